//! Acquisition's tables: the brand's channel accounts and its channel codes (with the
//! members they route to and the tags they put on), each code's WeCom contact way as
//! WeCom last took it. Accounts are the tenant's reference data (everyone who may see
//! codes sees them); a code is within a principal's reach when it routes to one of the
//! staff they reach or one of them made it, and a change may route only to staff within
//! reach.

mod accounts;
mod adds;
mod codes;
mod group_codes;
mod landing;
mod links;
mod reports;
mod rollup;
mod store_codes;

pub(crate) use adds::{CodeAdd, EndedRelation};
pub use codes::ContactWayUpdate;
pub(crate) use codes::{CodeRef, live_codes_by_state_in};
pub use group_codes::JoinWayUpdate;
pub(crate) use group_codes::look_again_at_chat_in;
pub use landing::{KeptImage, LandingCode, WecomQrImage};
pub use links::{LINKS_SOURCE, LinkRoute};
pub(crate) use links::{LinkClick, count_clicks_in};
pub use rollup::RelationEnd;
pub(crate) use rollup::{Rollup, first_touch_orders};
