//! The app's own account and history — push devices, notification preferences, an order's
//! tracking history — and couriers reporting positions of their shipments: routed to
//! tracking-svc with the caller's id (or, for couriers, the courier's id).

use oms_proto::{mobile::v1 as pb, tracking::v1 as trk};
use tonic::{Request, Response, Status, Streaming};

use super::{MobileApi, retrying};
use crate::auth::scope;

/// An order's whole tracking history, if it is the caller's.
pub(super) async fn get_order_tracking(
    api: &MobileApi,
    request: Request<pb::GetOrderTrackingRequest>,
) -> Result<Response<pb::GetOrderTrackingResponse>, Status> {
    let call = api
        .admit(&request, "GetOrderTracking", scope::READ, false)
        .await?;
    let message = trk::GetOrderTrackingRequest {
        order_id: request.into_inner().order_id,
        user_id: call.caller.user_id.clone(),
    };
    let tracking = retrying(|| async {
        api.backends
            .tracking
            .clone()
            .get_order_tracking(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::GetOrderTrackingResponse {
        order_id: tracking.order_id,
        timeline: tracking.timeline,
        shipments: tracking.shipments,
    }))
}

/// Registers the caller's install for pushes.
pub(super) async fn register_device(
    api: &MobileApi,
    request: Request<pb::RegisterDeviceRequest>,
) -> Result<Response<pb::RegisterDeviceResponse>, Status> {
    let call = api
        .admit(&request, "RegisterDevice", scope::WRITE, false)
        .await?;
    let r = request.into_inner();
    let message = trk::RegisterDeviceRequest {
        user_id: call.caller.user_id.clone(),
        device_token: r.device_token,
        platform: r.platform,
        locale: r.locale,
    };
    // Registering states the device's whole record, so repeating it is harmless.
    retrying(|| async {
        api.backends
            .tracking
            .clone()
            .register_device(call.forward(message.clone()))
            .await
    })
    .await?;
    Ok(Response::new(pb::RegisterDeviceResponse {}))
}

/// Stops pushes to one of the caller's installs.
pub(super) async fn unregister_device(
    api: &MobileApi,
    request: Request<pb::UnregisterDeviceRequest>,
) -> Result<Response<pb::UnregisterDeviceResponse>, Status> {
    let call = api
        .admit(&request, "UnregisterDevice", scope::WRITE, false)
        .await?;
    let message = trk::UnregisterDeviceRequest {
        user_id: call.caller.user_id.clone(),
        device_token: request.into_inner().device_token,
    };
    let removed = retrying(|| async {
        api.backends
            .tracking
            .clone()
            .unregister_device(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner()
    .removed;
    Ok(Response::new(pb::UnregisterDeviceResponse { removed }))
}

/// The caller's notification preferences.
pub(super) async fn get_notification_preferences(
    api: &MobileApi,
    request: Request<pb::GetNotificationPreferencesRequest>,
) -> Result<Response<pb::GetNotificationPreferencesResponse>, Status> {
    let call = api
        .admit(&request, "GetNotificationPreferences", scope::READ, false)
        .await?;
    let message = trk::GetNotificationPreferencesRequest {
        user_id: call.caller.user_id.clone(),
    };
    let preferences = retrying(|| async {
        api.backends
            .tracking
            .clone()
            .get_notification_preferences(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner()
    .preferences;
    Ok(Response::new(pb::GetNotificationPreferencesResponse {
        preferences,
    }))
}

/// Replaces the caller's notification preferences.
pub(super) async fn set_notification_preferences(
    api: &MobileApi,
    request: Request<pb::SetNotificationPreferencesRequest>,
) -> Result<Response<pb::SetNotificationPreferencesResponse>, Status> {
    let call = api
        .admit(&request, "SetNotificationPreferences", scope::WRITE, false)
        .await?;
    let preferences = request.into_inner().preferences.map(|mut p| {
        p.user_id.clone_from(&call.caller.user_id);
        p
    });
    let message = trk::SetNotificationPreferencesRequest { preferences };
    // The whole set replaces the stored one, so repeating it is harmless.
    let preferences = retrying(|| async {
        api.backends
            .tracking
            .clone()
            .set_notification_preferences(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner()
    .preferences;
    Ok(Response::new(pb::SetNotificationPreferencesResponse {
        preferences,
    }))
}

/// A courier's batch of fixes, for shipments assigned to that courier.
pub(super) async fn report_positions(
    api: &MobileApi,
    request: Request<pb::ReportPositionsRequest>,
) -> Result<Response<pb::ReportPositionsResponse>, Status> {
    let call = api
        .admit(&request, "ReportPositions", scope::COURIER, false)
        .await?;
    let message = trk::ReportPositionsRequest {
        positions: request.into_inner().positions,
        courier_id: call.caller.user_id.clone(),
    };
    // A fix is kept once per device and time, so a repeated batch adds nothing.
    let tally = retrying(|| async {
        api.backends
            .tracking
            .clone()
            .report_positions(call.forward(message.clone()))
            .await
    })
    .await?
    .into_inner();
    Ok(Response::new(pb::ReportPositionsResponse {
        accepted: tally.accepted,
        duplicates: tally.duplicates,
        rejections: tally.rejections,
    }))
}

/// A courier's stream of fixes, each message stamped with the courier.
pub(super) async fn stream_positions(
    api: &MobileApi,
    request: Request<Streaming<pb::StreamPositionsRequest>>,
) -> Result<Response<pb::StreamPositionsResponse>, Status> {
    let call = api
        .admit(&request, "StreamPositions", scope::COURIER, true)
        .await?;
    let courier_id = call.caller.user_id.clone();
    // The app's messages, each stamped with the courier; the upstream ends where the app's
    // stream ends or breaks (what arrived before is kept, as on a direct call).
    let mut inbound = request.into_inner();
    let (forward, upstream) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok(Some(message)) = inbound.message().await {
            let stamped = trk::StreamPositionsRequest {
                position: message.position,
                courier_id: courier_id.clone(),
            };
            if forward.send(stamped).await.is_err() {
                break;
            }
        }
    });
    let upstream = tokio_stream::wrappers::ReceiverStream::new(upstream);
    // A stream cannot be replayed, so it is not retried; the courier's app sends again.
    let tally = api
        .backends
        .tracking
        .clone()
        .stream_positions(call.identified(upstream))
        .await?
        .into_inner();
    Ok(Response::new(pb::StreamPositionsResponse {
        accepted: tally.accepted,
        duplicates: tally.duplicates,
        rejections: tally.rejections,
    }))
}
