//! The gRPC handler: one call, one turn.

use std::sync::Arc;

use oms_proto::assistant::v1::{
    ConverseRequest, ConverseResponse, assistant_service_server::AssistantService,
};
use tonic::{Request, Response, Status};

use crate::service::Assistant;

/// `oms.assistant.v1.AssistantService`.
pub struct AssistantApi {
    /// The use case.
    pub assistant: Arc<Assistant>,
}

#[tonic::async_trait]
impl AssistantService for AssistantApi {
    async fn converse(
        &self,
        request: Request<ConverseRequest>,
    ) -> Result<Response<ConverseResponse>, Status> {
        Ok(Response::new(
            self.assistant.converse(request.into_inner()).await?,
        ))
    }
}
