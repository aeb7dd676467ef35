//! Typed ids. Every stored object has a 64-bit id from its table; the newtypes keep a
//! unit id from being passed where a staff id is meant.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    )*};
}

id_type!(
    /// A tenant: one enterprise (corp) and everything it owns.
    TenantId,
    /// A unit of a tenant: group, brand, subsidiary or store.
    UnitId,
    /// A staff member who signs in to the console.
    StaffId,
    /// A role: a named set of permissions.
    RoleId,
    /// A bearer API token for programs.
    ApiTokenId,
    /// A console session.
    SessionId,
    /// An entry of the audit log.
    AuditEntryId,
    /// A source of events (an app, a site, a server) with its write key.
    SourceId,
    /// A customer profile.
    CustomerId,
    /// A group of tags.
    TagGroupId,
    /// A tag.
    TagId,
    /// A saved segment.
    SegmentId,
    /// A tag rule.
    TagRuleId,
    /// A staff member's saved view of a list.
    SavedViewId,
    /// A durable background job.
    JobId,
    /// A brand's account on a platform (a Douyin account, a Tmall store).
    ChannelAccountId,
    /// A channel code (渠道活码): a QR code carrying a `state`.
    ChannelCodeId,
    /// A stored file (an import's upload).
    FileId,
    /// A connector account: a tenant's account on a channel (a WeCom corp's app).
    ConnectorId,
    /// A customer's transfer from one WeCom member to another (客户继承).
    TransferId,
    /// A tracked link (`/l/{slug}`).
    TrackedLinkId,
    /// A destination the brand registered for tracked links (a URL prefix).
    LinkDestinationId,
    /// A group code (群活码): a WeCom join way over a code's group chats.
    GroupCodeId,
    /// A message template: a text with personalisation, for mass sends and welcomes.
    MessageTemplateId,
    /// A mass send (群发).
    BroadcastId,
    /// An item of the content library (素材).
    ContentItemId,
    /// A quick reply (快捷回复).
    QuickReplyId,
    /// A group of quick replies.
    QuickReplyGroupId,
);
