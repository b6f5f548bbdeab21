//! The tracking database schema.

use oms_platform::migration::{OutboxProgress, PlatformTables};
use sea_orm_migration::{prelude::*, schema::*};

/// Migrations of the tracking database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(PlatformTables),
            Box::new(TrackingTables),
            Box::new(OutboxProgress),
            Box::new(CouriersAndLocales),
            Box::new(DeliveryHistoryTables),
            Box::new(DeliveryConditions),
            Box::new(EtaModelVersions),
            Box::new(HolidaysAndLoad),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("tracking_migrations").into_iden()
    }
}

struct TrackingTables;

impl MigrationName for TrackingTables {
    fn name(&self) -> &str {
        "m0002_tracking"
    }
}

#[derive(DeriveIden)]
enum Shipments {
    Table,
    ShipmentId,
    OrderId,
    UserId,
    DestLat,
    DestLng,
    WindowStart,
    WindowEnd,
    Status,
    UpdatedAt,
    CourierId,
}

#[derive(DeriveIden)]
enum Positions {
    Table,
    DeviceId,
    RecordedAt,
    ShipmentId,
    Lat,
    Lng,
}

#[derive(DeriveIden)]
enum Etas {
    Table,
    ShipmentId,
    Eta,
    Arriving,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Timeline {
    Table,
    EventId,
    OrderId,
    UserId,
    Status,
    Note,
    At,
}

#[derive(DeriveIden)]
enum Feed {
    Table,
    Seq,
    UserId,
    Update,
    CreatedAt,
}

#[derive(DeriveIden)]
enum FeedCounter {
    Table,
    Id,
    Next,
}

#[derive(DeriveIden)]
enum NotificationPreferences {
    Table,
    UserId,
    Preferences,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    DeviceToken,
    UserId,
    Platform,
    UpdatedAt,
    Locale,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    NotificationId,
    UserId,
    OrderId,
    Title,
    Body,
    Attempts,
    NextAttemptAt,
    DeliveredAt,
    LastError,
    CreatedAt,
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for column in columns {
        index.col(column);
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for TrackingTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Shipments::Table)
                    .if_not_exists()
                    .col(string_len(Shipments::ShipmentId, 64).primary_key())
                    .col(string_len(Shipments::OrderId, 64))
                    .col(string_len(Shipments::UserId, 64))
                    .col(double(Shipments::DestLat))
                    .col(double(Shipments::DestLng))
                    .col(timestamp_with_time_zone_null(Shipments::WindowStart))
                    .col(timestamp_with_time_zone_null(Shipments::WindowEnd))
                    .col(integer(Shipments::Status))
                    .col(timestamp_with_time_zone(Shipments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Positions::Table)
                    .if_not_exists()
                    .col(string_len(Positions::DeviceId, 64))
                    .col(timestamp_with_time_zone(Positions::RecordedAt))
                    .col(string_len(Positions::ShipmentId, 64))
                    .col(double(Positions::Lat))
                    .col(double(Positions::Lng))
                    .primary_key(
                        Index::create()
                            .col(Positions::DeviceId)
                            .col(Positions::RecordedAt),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "positions_shipment",
            Positions::Table,
            vec![
                Positions::ShipmentId.into_iden(),
                Positions::RecordedAt.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "positions_recorded",
            Positions::Table,
            vec![Positions::RecordedAt.into_iden()],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Etas::Table)
                    .if_not_exists()
                    .col(string_len(Etas::ShipmentId, 64).primary_key())
                    .col(blob(Etas::Eta))
                    .col(boolean(Etas::Arriving))
                    .col(timestamp_with_time_zone(Etas::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Timeline::Table)
                    .if_not_exists()
                    .col(string_len(Timeline::EventId, 64).primary_key())
                    .col(string_len(Timeline::OrderId, 64))
                    .col(string_len(Timeline::UserId, 64))
                    .col(integer(Timeline::Status))
                    .col(text(Timeline::Note))
                    .col(timestamp_with_time_zone(Timeline::At))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "timeline_order",
            Timeline::Table,
            vec![Timeline::OrderId.into_iden(), Timeline::At.into_iden()],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Feed::Table)
                    .if_not_exists()
                    .col(big_integer(Feed::Seq).primary_key())
                    .col(string_len(Feed::UserId, 64))
                    .col(blob(Feed::Update))
                    .col(timestamp_with_time_zone(Feed::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "feed_user",
            Feed::Table,
            vec![Feed::UserId.into_iden(), Feed::Seq.into_iden()],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(FeedCounter::Table)
                    .if_not_exists()
                    .col(integer(FeedCounter::Id).primary_key())
                    .col(big_integer(FeedCounter::Next))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(FeedCounter::Table)
                    .columns([FeedCounter::Id, FeedCounter::Next])
                    .values_panic([1.into(), 0.into()])
                    .on_conflict(OnConflict::column(FeedCounter::Id).do_nothing().to_owned())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationPreferences::Table)
                    .if_not_exists()
                    .col(string_len(NotificationPreferences::UserId, 64).primary_key())
                    .col(blob(NotificationPreferences::Preferences))
                    .col(timestamp_with_time_zone(NotificationPreferences::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .if_not_exists()
                    .col(string_len(Devices::DeviceToken, 512).primary_key())
                    .col(string_len(Devices::UserId, 64))
                    .col(integer(Devices::Platform))
                    .col(timestamp_with_time_zone(Devices::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "devices_user",
            Devices::Table,
            vec![Devices::UserId.into_iden()],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .if_not_exists()
                    .col(string_len(Notifications::NotificationId, 64).primary_key())
                    .col(string_len(Notifications::UserId, 64))
                    .col(string_len(Notifications::OrderId, 64))
                    .col(string_len(Notifications::Title, 200))
                    .col(text(Notifications::Body))
                    .col(integer(Notifications::Attempts))
                    .col(timestamp_with_time_zone(Notifications::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Notifications::DeliveredAt))
                    .col(text(Notifications::LastError))
                    .col(timestamp_with_time_zone(Notifications::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "notifications_due",
            Notifications::Table,
            vec![
                Notifications::DeliveredAt.into_iden(),
                Notifications::NextAttemptAt.into_iden(),
            ],
        )
        .await
    }
}

/// The courier a shipment is assigned to (only that courier's app may report its positions),
/// and the language each device's pushes should use.
struct CouriersAndLocales;

impl MigrationName for CouriersAndLocales {
    fn name(&self) -> &str {
        "m0003_couriers_and_locales"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CouriersAndLocales {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Shipments::Table)
                    .add_column(string_len(Shipments::CourierId, 64).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Devices::Table)
                    .add_column(string_len(Devices::Locale, 35).default(""))
                    .to_owned(),
            )
            .await
    }
}

/// The delivery history models learn from, and the centers parcels leave from.
struct DeliveryHistoryTables;

impl MigrationName for DeliveryHistoryTables {
    fn name(&self) -> &str {
        "m0004_delivery_history"
    }
}

#[derive(DeriveIden)]
enum Centers {
    Table,
    CenterId,
    Lat,
    Lng,
    CountryCode,
    DailyCapacity,
}

#[derive(DeriveIden)]
enum DeliveryHistory {
    Table,
    ShipmentId,
    CenterId,
    DispatchedAt,
    DestLat,
    DestLng,
    Carrier,
    Method,
    DeliveredAt,
    DurationMin,
    PrecipMm,
    SnowCm,
    TempC,
    WindKmh,
    VisibilityKm,
    TrafficIndex,
    Enriched,
    DestCountry,
    Holiday,
    CenterLoad,
}

#[async_trait::async_trait]
impl MigrationTrait for DeliveryHistoryTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Centers::Table)
                    .if_not_exists()
                    .col(string_len(Centers::CenterId, 64).primary_key())
                    .col(double(Centers::Lat))
                    .col(double(Centers::Lng))
                    .col(string_len(Centers::CountryCode, 2))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeliveryHistory::Table)
                    .if_not_exists()
                    .col(string_len(DeliveryHistory::ShipmentId, 64).primary_key())
                    .col(string_len(DeliveryHistory::CenterId, 64))
                    .col(timestamp_with_time_zone(DeliveryHistory::DispatchedAt))
                    .col(double(DeliveryHistory::DestLat))
                    .col(double(DeliveryHistory::DestLng))
                    .col(string_len(DeliveryHistory::Carrier, 64))
                    .col(string_len(DeliveryHistory::Method, 32))
                    .col(timestamp_with_time_zone_null(DeliveryHistory::DeliveredAt))
                    .col(double_null(DeliveryHistory::DurationMin))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "delivery_history_dispatched",
            DeliveryHistory::Table,
            vec![DeliveryHistory::DispatchedAt.into_iden()],
        )
        .await
    }
}

/// Weather and traffic at dispatch, filled in by the sources after the row is written.
struct DeliveryConditions;

impl MigrationName for DeliveryConditions {
    fn name(&self) -> &str {
        "m0005_delivery_conditions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DeliveryConditions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            DeliveryHistory::PrecipMm,
            DeliveryHistory::SnowCm,
            DeliveryHistory::TempC,
            DeliveryHistory::WindKmh,
            DeliveryHistory::VisibilityKm,
            DeliveryHistory::TrafficIndex,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeliveryHistory::Table)
                        .add_column(double_null(column))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(DeliveryHistory::Table)
                    .add_column(boolean(DeliveryHistory::Enriched).default(false))
                    .to_owned(),
            )
            .await
    }
}

/// Trained delivery-time models, their scores, and which one serves.
struct EtaModelVersions;

impl MigrationName for EtaModelVersions {
    fn name(&self) -> &str {
        "m0006_eta_models"
    }
}

#[derive(DeriveIden)]
enum EtaModels {
    Table,
    Version,
    TrainedAt,
    TrainedRows,
    HeldOut,
    MaeMin,
    P90AbsErrMin,
    P90Coverage,
    BaselineMaeMin,
    Serving,
    Note,
    Model,
}

#[async_trait::async_trait]
impl MigrationTrait for EtaModelVersions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EtaModels::Table)
                    .if_not_exists()
                    .col(big_integer(EtaModels::Version).primary_key())
                    .col(timestamp_with_time_zone(EtaModels::TrainedAt))
                    .col(integer(EtaModels::TrainedRows))
                    .col(integer(EtaModels::HeldOut))
                    .col(double(EtaModels::MaeMin))
                    .col(double(EtaModels::P90AbsErrMin))
                    .col(double(EtaModels::P90Coverage))
                    .col(double(EtaModels::BaselineMaeMin))
                    .col(boolean(EtaModels::Serving))
                    .col(text(EtaModels::Note))
                    .col(text(EtaModels::Model))
                    .to_owned(),
            )
            .await
    }
}

/// The destination's country and public holiday, and the center's load, at dispatch.
struct HolidaysAndLoad;

impl MigrationName for HolidaysAndLoad {
    fn name(&self) -> &str {
        "m0007_holidays_and_load"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for HolidaysAndLoad {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let add = |table: DeliveryHistory, column: ColumnDef| {
            Table::alter().table(table).add_column(column).to_owned()
        };
        manager
            .alter_table(add(
                DeliveryHistory::Table,
                string_len(DeliveryHistory::DestCountry, 2)
                    .default("")
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add(
                DeliveryHistory::Table,
                boolean_null(DeliveryHistory::Holiday),
            ))
            .await?;
        manager
            .alter_table(add(
                DeliveryHistory::Table,
                double_null(DeliveryHistory::CenterLoad),
            ))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Centers::Table)
                    .add_column(integer(Centers::DailyCapacity).default(0))
                    .to_owned(),
            )
            .await?;
        // The load at a dispatch counts the center's dispatches of the day before it.
        index(
            manager,
            "delivery_history_center_dispatched",
            DeliveryHistory::Table,
            vec![
                DeliveryHistory::CenterId.into_iden(),
                DeliveryHistory::DispatchedAt.into_iden(),
            ],
        )
        .await
    }
}
