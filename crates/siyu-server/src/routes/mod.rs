//! The API's routes. Each module is one resource (or one concern of a large one); a new
//! resource adds a module and one line to [`api_router`], and its handlers'
//! `#[utoipa::path]` annotations put it in the OpenAPI document. Helpers that several
//! route modules share live in modules of their own that import no route module:
//! [`customer_scope`] (the caller's data scope over customers) and [`conditions`]
//! (segment definitions as requests give them).

pub mod acquisition;
pub mod app_messages;
pub mod audit;
pub mod auth;
pub(crate) mod conditions;
pub mod connector_members;
pub mod connector_sync;
pub mod connector_transfers;
pub mod connectors;
pub mod customer_export;
pub mod customer_records;
pub(crate) mod customer_scope;
pub mod customer_settings;
pub mod customer_wecom;
pub mod customers;
pub mod dashboard;
pub mod engagement;
pub mod imports;
pub mod jobs;
pub mod ops;
pub mod orders;
pub mod reports;
pub mod roles;
pub mod scores;
pub mod segments;
pub mod sources;
pub mod staff;
pub mod tag_rules;
pub mod tags;
pub mod tokens;
pub mod tracking;
pub mod units;
pub mod views;
pub mod wecom_callbacks;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::openapi::ApiDoc;

pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::change_password))
        .routes(routes!(views::list_views, views::save_view))
        .routes(routes!(views::delete_view))
        .routes(routes!(
            customer_settings::get_identity_settings,
            customer_settings::put_identity_settings
        ))
        .routes(routes!(
            customer_settings::get_trait_limits,
            customer_settings::put_trait_limits
        ))
        .routes(routes!(units::list_units, units::create_unit))
        .routes(routes!(
            units::get_unit,
            units::update_unit,
            units::delete_unit
        ))
        .routes(routes!(staff::list_staff, staff::create_staff))
        .routes(routes!(
            staff::get_staff,
            staff::update_staff,
            staff::delete_staff
        ))
        .routes(routes!(roles::list_roles, roles::create_role))
        .routes(routes!(
            roles::get_role,
            roles::update_role,
            roles::delete_role
        ))
        .routes(routes!(roles::list_permissions))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::get_token, tokens::revoke_token))
        .routes(routes!(audit::list_audit_log))
        .routes(routes!(
            connectors::list_connectors,
            connectors::create_connector
        ))
        .routes(routes!(
            connectors::get_connector,
            connectors::update_connector,
            connectors::delete_connector
        ))
        .routes(routes!(
            connector_sync::ask_sync,
            connector_sync::sync_overview
        ))
        .routes(routes!(connector_sync::list_departments))
        .routes(routes!(connector_sync::map_department))
        .routes(routes!(connector_sync::list_group_chats))
        .routes(routes!(connector_members::list_members))
        .routes(routes!(connector_members::update_member))
        .routes(routes!(app_messages::send_app_message))
        .routes(routes!(customer_wecom::customer_wecom_relations))
        .routes(routes!(
            connector_transfers::ask_transfers,
            connector_transfers::list_transfers
        ))
        .routes(routes!(connector_transfers::list_resigned_customers))
        // WeCom calls it: signed with the connector's token, no session or API token
        .routes(routes!(
            wecom_callbacks::verify_wecom_url,
            wecom_callbacks::receive_wecom_event
        ))
        .routes(routes!(
            engagement::content::list_content,
            engagement::content::create_content
        ))
        .routes(routes!(
            engagement::content::get_content,
            engagement::content::update_content,
            engagement::content::delete_content
        ))
        .routes(routes!(engagement::content::get_content_performance))
        .routes(routes!(engagement::content::upload_content_file))
        .routes(routes!(engagement::content::download_content_file))
        .routes(routes!(
            engagement::quick_replies::list_quick_replies,
            engagement::quick_replies::create_quick_reply
        ))
        .routes(routes!(
            engagement::quick_replies::get_quick_reply,
            engagement::quick_replies::update_quick_reply,
            engagement::quick_replies::delete_quick_reply
        ))
        .routes(routes!(engagement::quick_replies::use_quick_reply))
        .routes(routes!(
            engagement::quiet_hours::get_quiet_hours,
            engagement::quiet_hours::put_quiet_hours
        ))
        .routes(routes!(
            engagement::quick_replies::list_quick_reply_groups,
            engagement::quick_replies::create_quick_reply_group
        ))
        .routes(routes!(
            engagement::quick_replies::update_quick_reply_group,
            engagement::quick_replies::delete_quick_reply_group
        ))
        .routes(routes!(
            engagement::templates::list_message_templates,
            engagement::templates::create_message_template
        ))
        .routes(routes!(
            engagement::templates::get_message_template,
            engagement::templates::update_message_template,
            engagement::templates::delete_message_template
        ))
        .routes(routes!(engagement::templates::preview_message_template))
        .routes(routes!(
            engagement::broadcasts::list_broadcasts,
            engagement::broadcasts::create_broadcast
        ))
        .routes(routes!(engagement::broadcasts::preview_broadcast))
        .routes(routes!(engagement::broadcasts::read_audience_file))
        .routes(routes!(
            engagement::broadcasts::get_broadcast,
            engagement::broadcasts::update_broadcast
        ))
        .routes(routes!(engagement::broadcasts::cancel_broadcast))
        .routes(routes!(engagement::broadcast_tasks::list_broadcast_tasks))
        .routes(routes!(
            engagement::broadcast_tasks::list_broadcast_recipients
        ))
        .routes(routes!(engagement::broadcast_tasks::remind_broadcast))
        .routes(routes!(
            engagement::broadcast_tasks::resolve_broadcast_batch
        ))
        .routes(routes!(
            acquisition::accounts::list_channel_accounts,
            acquisition::accounts::create_channel_account
        ))
        .routes(routes!(
            acquisition::accounts::get_channel_account,
            acquisition::accounts::update_channel_account,
            acquisition::accounts::delete_channel_account
        ))
        .routes(routes!(
            acquisition::codes::list_channel_codes,
            acquisition::codes::create_channel_code
        ))
        .routes(routes!(
            acquisition::codes::get_channel_code,
            acquisition::codes::update_channel_code,
            acquisition::codes::delete_channel_code
        ))
        .routes(routes!(acquisition::qr::channel_code_qr))
        .routes(routes!(acquisition::store_codes::create_store_codes))
        .routes(routes!(acquisition::store_codes::store_code_sheet))
        .routes(routes!(acquisition::reports::acquisition_report))
        .routes(routes!(
            acquisition::qr::get_brand_logo,
            acquisition::qr::put_brand_logo,
            acquisition::qr::delete_brand_logo
        ))
        // public: a code's landing page and its WeCom QR, where its printed QR leads
        .routes(routes!(acquisition::landing::landing_page))
        .routes(routes!(acquisition::landing::landing_qr))
        .routes(routes!(
            acquisition::links::list_link_destinations,
            acquisition::links::add_link_destination
        ))
        .routes(routes!(acquisition::links::remove_link_destination))
        .routes(routes!(
            acquisition::links::list_links,
            acquisition::links::create_link
        ))
        .routes(routes!(
            acquisition::links::get_link,
            acquisition::links::update_link,
            acquisition::links::delete_link
        ))
        .routes(routes!(
            acquisition::group_codes::list_group_codes,
            acquisition::group_codes::create_group_code
        ))
        .routes(routes!(
            acquisition::group_codes::get_group_code,
            acquisition::group_codes::update_group_code,
            acquisition::group_codes::delete_group_code
        ))
        .routes(routes!(acquisition::group_codes::group_code_report))
        .routes(routes!(acquisition::links::personal_link))
        .routes(routes!(acquisition::links::link_report))
        // public: tracked links, where campaigns' short links lead
        .routes(routes!(acquisition::link_redirect::follow_link))
        .routes(routes!(acquisition::link_redirect::follow_personal_link))
        .routes(routes!(sources::list_sources, sources::create_source))
        .routes(routes!(sources::get_source, sources::update_source))
        .routes(routes!(sources::rotate_key))
        .routes(routes!(customers::list_customers))
        .routes(routes!(customers::lookup_customer))
        .routes(routes!(customer_export::export_customers))
        .routes(routes!(customer_export::start_export))
        .routes(routes!(customer_export::export_file))
        .routes(routes!(customers::assign_customers))
        .routes(routes!(imports::list_imports, imports::start_import))
        .routes(routes!(imports::get_import))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::retry_job))
        .routes(routes!(
            customers::get_customer,
            customers::update_customer,
            customers::erase_customer
        ))
        .routes(routes!(customer_records::customer_timeline))
        .routes(routes!(customer_records::customer_activity))
        .routes(routes!(
            customer_records::list_notes,
            customer_records::add_note
        ))
        .routes(routes!(
            customer_records::get_consent,
            customer_records::record_consent
        ))
        .routes(routes!(customer_export::export_customer_data))
        .routes(routes!(customers::undo_merge))
        .routes(routes!(tags::list_tag_groups, tags::create_tag_group))
        .routes(routes!(tags::update_tag_group, tags::delete_tag_group))
        .routes(routes!(tags::list_tags, tags::create_tag))
        .routes(routes!(tags::get_tag, tags::update_tag, tags::delete_tag))
        .routes(routes!(tags::customer_tags, tags::change_customer_tags))
        .routes(routes!(tags::tag_history))
        .routes(routes!(tags::bulk_tag))
        .routes(routes!(
            tag_rules::list_tag_rules,
            tag_rules::create_tag_rule
        ))
        .routes(routes!(
            tag_rules::get_tag_rule,
            tag_rules::update_tag_rule,
            tag_rules::delete_tag_rule
        ))
        .routes(routes!(segments::segment_events))
        .routes(routes!(segments::preview))
        .routes(routes!(segments::list_segments, segments::create_segment))
        .routes(routes!(
            segments::get_segment,
            segments::update_segment,
            segments::delete_segment
        ))
        .routes(routes!(segments::segment_members))
        .routes(routes!(segments::export_segment))
        .routes(routes!(segments::segment_counts))
        .routes(routes!(reports::rfm_report))
        .routes(routes!(reports::lifecycle_report))
        .routes(routes!(reports::stage_changes))
        .routes(routes!(reports::pareto_report))
        .routes(routes!(dashboard::dashboard))
        .routes(routes!(scores::customer_scores))
        .routes(routes!(
            scores::get_score_settings,
            scores::put_score_settings
        ))
        .routes(routes!(
            orders::get_currency_settings,
            orders::put_currency_settings
        ))
        .routes(routes!(orders::list_orders, orders::record_order))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::list_after_sales, orders::record_after_sale))
        .routes(routes!(orders::update_after_sale))
        .routes(routes!(tracking::identify))
        .routes(routes!(tracking::track))
        .routes(routes!(tracking::page))
        .routes(routes!(tracking::screen))
        .routes(routes!(tracking::group))
        .routes(routes!(tracking::alias))
        .routes(routes!(tracking::batch))
        .routes(routes!(tracking::import))
}
