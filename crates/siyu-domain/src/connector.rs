//! Connector accounts: a tenant's account on a channel siyu reaches customers and staff
//! through (a WeCom corp's self-built app now; e-mail, SMS and webhooks later). What an
//! admin configures splits in two: settings that may be shown (the corp id, the API's
//! base URL, the default welcome) and secrets (the app secret, the callback token and
//! EncodingAESKey), which the store seals and no answer ever carries.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::DomainError;
use crate::access::DataScope;
use crate::error::check_name;
use crate::ids::{ConnectorId, CustomerId, JobId, StaffId, UnitId};
use crate::order::string_enum;

string_enum!(
    /// The channel a connector reaches.
    ConnectorKind {
        Wecom => "wecom",
    }
);

/// Where WeCom's API is unless a connector says otherwise; siyu appends `/cgi-bin/…`.
pub const WECOM_API_BASE_URL: &str = "https://qyapi.weixin.qq.com";
/// WeCom's limit on a welcome message's text (send_welcome_msg), in bytes.
pub const WECOM_TEXT_MAX_BYTES: usize = 4000;

/// A WeCom connector's settings that may be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WecomSettings {
    /// The corp's id (企业ID), `ww…`: callbacks must name it.
    pub corp_id: String,
    /// The self-built app's AgentId, needed to send app messages to staff.
    pub agent_id: Option<i64>,
    /// WeCom's API, `https://qyapi.weixin.qq.com` unless pointed elsewhere (a proxy, a
    /// stand-in in tests).
    pub api_base_url: String,
    /// The default welcome message for customers who add a member.
    pub welcome: Option<String>,
    /// The role given to members synced from WeCom (a role's name; `service` unless set).
    pub member_role: String,
    /// The data scope given to synced members (`own` unless set).
    pub member_scope: DataScope,
}

/// A WeCom connector's secrets. Never shown; sealed at rest.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WecomSecrets {
    /// The app's Secret: with the corp id it fetches access tokens.
    pub secret: String,
    /// The callback Token: signs callbacks.
    pub token: String,
    /// The callback EncodingAESKey: 43 characters, encrypts callbacks.
    pub encoding_aes_key: String,
}

impl std::fmt::Debug for WecomSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WecomSecrets(…)")
    }
}

/// A connector's configuration, checked: what the store keeps in the clear and what it
/// seals.
#[derive(Clone, PartialEq)]
pub struct ConnectorConfig {
    pub kind: ConnectorKind,
    pub name: String,
    /// The settings as JSON, for the store (its `config` column).
    pub settings: Value,
    /// The secrets as JSON bytes, for the store to seal.
    pub secrets: Vec<u8>,
}

impl std::fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ConnectorConfig {
    /// Checks a new connector: `config` holds its settings and secrets together, as an
    /// admin sends them.
    pub fn new(kind: &str, name: &str, config: &Value) -> Result<Self, DomainError> {
        let kind = ConnectorKind::parse("kind", kind)?;
        let name = check_name("name", name, 100)?;
        let ConnectorKind::Wecom = kind;
        let (settings, secrets) = wecom_config(config, None)?;
        Ok(Self::of(kind, name, &settings, &secrets))
    }

    /// Checks a change: fields of `config` left out keep their value (a secret too, so
    /// an admin can change the welcome without sending the secret again).
    pub fn changed(
        kind: ConnectorKind,
        name: &str,
        settings: &Value,
        secrets: &[u8],
        new_name: Option<&str>,
        config: Option<&Value>,
    ) -> Result<Self, DomainError> {
        let name = check_name("name", new_name.unwrap_or(name), 100)?;
        let ConnectorKind::Wecom = kind;
        let old = WecomConnector::read(settings, secrets).map_err(|e| {
            DomainError::Conflict(format!("the stored configuration is broken: {e}"))
        })?;
        let empty = Value::Object(Map::new());
        let (settings, secrets) = wecom_config(
            config.unwrap_or(&empty),
            Some((&old.settings, &old.secrets)),
        )?;
        Ok(Self::of(kind, name, &settings, &secrets))
    }

    fn of(
        kind: ConnectorKind,
        name: String,
        settings: &WecomSettings,
        secrets: &WecomSecrets,
    ) -> Self {
        Self {
            kind,
            name,
            settings: serde_json::to_value(settings).expect("settings serialize"),
            secrets: serde_json::to_vec(secrets).expect("secrets serialize"),
        }
    }
}

/// A WeCom connector's settings and secrets, read back from the store.
#[derive(Debug, Clone)]
pub struct WecomConnector {
    pub settings: WecomSettings,
    pub secrets: WecomSecrets,
}

impl WecomConnector {
    pub fn read(settings: &Value, secrets: &[u8]) -> Result<Self, String> {
        Ok(Self {
            settings: serde_json::from_value(settings.clone()).map_err(|e| e.to_string())?,
            secrets: serde_json::from_slice(secrets).map_err(|e| e.to_string())?,
        })
    }
}

/// Reads a WeCom `config` over the previous values (when changing).
fn wecom_config(
    config: &Value,
    previous: Option<(&WecomSettings, &WecomSecrets)>,
) -> Result<(WecomSettings, WecomSecrets), DomainError> {
    let Some(fields) = config.as_object() else {
        return Err(DomainError::invalid("config", "must be an object"));
    };
    const KNOWN: [&str; 9] = [
        "corp_id",
        "secret",
        "token",
        "encoding_aes_key",
        "agent_id",
        "api_base_url",
        "welcome",
        "member_role",
        "member_scope",
    ];
    if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(DomainError::invalid(
            format!("config.{unknown}"),
            format!("is not a WeCom setting (known: {})", KNOWN.join(", ")),
        ));
    }
    let text = |key: &str, old: Option<&str>| -> Result<String, DomainError> {
        match fields.get(key) {
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(_) => Err(DomainError::invalid(
                format!("config.{key}"),
                "must be a string",
            )),
            None => old
                .map(str::to_owned)
                .ok_or_else(|| DomainError::invalid(format!("config.{key}"), "is required")),
        }
    };
    let corp_id = text("corp_id", previous.map(|p| p.0.corp_id.as_str()))?;
    check_token_like("config.corp_id", &corp_id, 64)?;
    let secret = text("secret", previous.map(|p| p.1.secret.as_str()))?;
    if secret.is_empty() || secret.len() > 256 || !secret.chars().all(|c| c.is_ascii_graphic()) {
        return Err(DomainError::invalid(
            "config.secret",
            "must be the app's Secret: 1 to 256 visible ASCII characters",
        ));
    }
    let token = text("token", previous.map(|p| p.1.token.as_str()))?;
    check_token_like("config.token", &token, 32)?;
    let encoding_aes_key = text(
        "encoding_aes_key",
        previous.map(|p| p.1.encoding_aes_key.as_str()),
    )?;
    if encoding_aes_key.len() != 43
        || !encoding_aes_key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    {
        return Err(DomainError::invalid(
            "config.encoding_aes_key",
            "must be the callback's EncodingAESKey: 43 letters and digits",
        ));
    }
    let agent_id = match fields.get("agent_id") {
        None => previous.and_then(|p| p.0.agent_id),
        Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().filter(|n| *n > 0).ok_or_else(|| {
            DomainError::invalid(
                "config.agent_id",
                "must be the app's AgentId, a positive integer",
            )
        })?),
    };
    let api_base_url = match fields.get("api_base_url") {
        None | Some(Value::Null) => previous
            .map(|p| p.0.api_base_url.clone())
            .unwrap_or_else(|| WECOM_API_BASE_URL.to_owned()),
        Some(Value::String(s)) => check_base_url(s)?,
        Some(_) => {
            return Err(DomainError::invalid(
                "config.api_base_url",
                "must be a string",
            ));
        }
    };
    // the kept secret is sent only where it was given for: pointing the connector at
    // another corp or another server takes every secret again (else a changed URL would
    // carry the kept secret to whoever runs that server)
    if let Some((old, _)) = previous {
        let moved = corp_id != old.corp_id || api_base_url != old.api_base_url;
        if let Some(missing) = ["secret", "token", "encoding_aes_key"]
            .into_iter()
            .find(|key| moved && !fields.contains_key(*key))
        {
            return Err(DomainError::invalid(
                format!("config.{missing}"),
                "must be given again when corp_id or api_base_url changes",
            ));
        }
    }
    let welcome = match fields.get("welcome") {
        None => previous.and_then(|p| p.0.welcome.clone()),
        Some(value) => read_welcome("config.welcome", value)?,
    };
    let member_role = match fields.get("member_role") {
        None | Some(Value::Null) => previous
            .map(|p| p.0.member_role.clone())
            .unwrap_or_else(|| "service".to_owned()),
        Some(Value::String(s)) => check_name("config.member_role", s, 100)?,
        Some(_) => {
            return Err(DomainError::invalid(
                "config.member_role",
                "must be a role's name",
            ));
        }
    };
    let member_scope = match fields.get("member_scope") {
        None | Some(Value::Null) => previous.map(|p| p.0.member_scope).unwrap_or(DataScope::Own),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            DomainError::invalid("config.member_scope", "must be own, unit_subtree or tenant")
        })?,
    };
    Ok((
        WecomSettings {
            corp_id,
            agent_id,
            api_base_url,
            welcome,
            member_role,
            member_scope,
        },
        WecomSecrets {
            secret,
            token,
            encoding_aes_key,
        },
    ))
}

fn check_token_like(field: &str, value: &str, max: usize) -> Result<(), DomainError> {
    if value.is_empty() || value.len() > max || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {max} letters and digits"),
        ));
    }
    Ok(())
}

/// An API base URL: http or https, a host, no query; kept without a trailing `/`.
fn check_base_url(value: &str) -> Result<String, DomainError> {
    let value = value.trim().trim_end_matches('/');
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let valid = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or("");
        !host.is_empty()
            && !r.contains(['?', '#', ' '])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    if valid {
        Ok(value.to_owned())
    } else {
        Err(DomainError::invalid(
            "config.api_base_url",
            "must be an http(s) URL such as https://qyapi.weixin.qq.com",
        ))
    }
}

/// What the last calls through a connector said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConnectorHealth {
    /// False after a configuration error (a revoked secret, a wrong corp id, an app not
    /// allowed to call an API) until a call succeeds again.
    pub healthy: bool,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_error_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A connector account as shown (never its secrets).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Connector {
    pub id: ConnectorId,
    pub kind: ConnectorKind,
    pub name: String,
    /// The settings that may be shown (for WeCom: corp_id, agent_id, api_base_url,
    /// welcome, member_role, member_scope).
    #[schema(value_type = Object)]
    pub config: Value,
    pub health: ConnectorHealth,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// Where a sync of a connector stands.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncState {
    /// `staff` or `customers`.
    pub what: String,
    pub job_id: Option<JobId>,
    /// Where the sync goes on from (opaque to all but its handler).
    #[schema(value_type = Object)]
    pub checkpoint: Value,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<i64>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
    /// Items stored so far (members, or follow relations).
    pub items: i64,
}

/// How a send to one recipient went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    Sent,
    /// The channel refused it (an expired welcome code, an invalid receiver).
    Failed,
    /// siyu did not send: the customer opted out of the channel.
    Refused,
    /// siyu did not send: the recipient's limit on the channel was reached.
    Dropped,
}

impl SendStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Sent => "sent",
            SendStatus::Failed => "failed",
            SendStatus::Refused => "refused",
            SendStatus::Dropped => "dropped",
        }
    }
}

/// A recorded send.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectorSend {
    pub id: i64,
    pub connector_id: Option<ConnectorId>,
    pub kind: String,
    pub customer_id: Option<CustomerId>,
    pub staff_id: Option<StaffId>,
    pub recipient: String,
    pub status: String,
    pub detail: Option<String>,
    pub job_id: Option<JobId>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "corp_id": "ww1436e0e65a779aee",
            "secret": "s3cr3t-Value_1",
            "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
        })
    }

    #[test]
    fn a_wecom_config_takes_defaults_and_keeps_secrets_apart() {
        let c = ConnectorConfig::new("wecom", " 企业微信 ", &full()).unwrap();
        assert_eq!(c.name, "企业微信");
        assert_eq!(c.settings["api_base_url"], WECOM_API_BASE_URL);
        assert_eq!(c.settings["member_role"], "service");
        assert_eq!(c.settings["member_scope"], "own");
        assert!(c.settings.get("secret").is_none());
        assert!(!c.settings.to_string().contains("s3cr3t"));
        let read = WecomConnector::read(&c.settings, &c.secrets).unwrap();
        assert_eq!(read.secrets.secret, "s3cr3t-Value_1");
        assert!(!format!("{read:?}").contains("s3cr3t"));
    }

    #[test]
    fn bad_configs_name_their_field() {
        let field = |patch: Value| {
            let mut config = full();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    config.as_object_mut().unwrap().remove(k);
                } else {
                    config[k] = v.clone();
                }
            }
            match ConnectorConfig::new("wecom", "w", &config) {
                Err(DomainError::Invalid(e)) => e.field,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(field(json!({"secret": null})), "config.secret");
        assert_eq!(field(json!({"corp_id": "ww 1"})), "config.corp_id");
        assert_eq!(
            field(json!({"encoding_aes_key": "short"})),
            "config.encoding_aes_key"
        );
        assert_eq!(field(json!({"token": "a-b"})), "config.token");
        assert_eq!(field(json!({"agent_id": "x"})), "config.agent_id");
        assert_eq!(
            field(json!({"api_base_url": "ftp://x"})),
            "config.api_base_url"
        );
        assert_eq!(
            field(json!({"welcome": "欢".repeat(1400)})),
            "config.welcome"
        );
        assert_eq!(field(json!({"member_scope": "all"})), "config.member_scope");
        assert_eq!(field(json!({"sekret": "x"})), "config.sekret");
        assert!(matches!(
            ConnectorConfig::new("email", "w", &full()),
            Err(DomainError::Invalid(e)) if e.field == "kind"
        ));
    }

    #[test]
    fn a_change_keeps_what_it_leaves_out() {
        let c = ConnectorConfig::new("wecom", "w", &full()).unwrap();
        let changed = ConnectorConfig::changed(
            c.kind,
            &c.name,
            &c.settings,
            &c.secrets,
            None,
            Some(&json!({"welcome": "你好"})),
        )
        .unwrap();
        let read = WecomConnector::read(&changed.settings, &changed.secrets).unwrap();
        assert_eq!(read.settings.welcome.as_deref(), Some("你好"));
        assert_eq!(read.secrets.secret, "s3cr3t-Value_1");
        assert!(!format!("{changed:?}").contains("s3cr3t"));

        // another server or corp takes every secret again: the kept one goes nowhere else
        let change = |config: Value| {
            ConnectorConfig::changed(
                c.kind,
                &c.name,
                &c.settings,
                &c.secrets,
                None,
                Some(&config),
            )
        };
        for moved in [
            json!({"api_base_url": "http://attacker.example/"}),
            json!({"corp_id": "wwother"}),
            json!({"api_base_url": "http://127.0.0.1:9", "secret": "new"}),
        ] {
            assert!(
                matches!(change(moved.clone()), Err(DomainError::Invalid(e)) if e.message.contains("again")),
                "{moved}"
            );
        }
        let moved = change(json!({
            "api_base_url": "http://127.0.0.1:9/", "secret": "new", "token": "t",
            "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
        }))
        .unwrap();
        assert_eq!(moved.settings["api_base_url"], "http://127.0.0.1:9");
        // the same URL again is no move
        change(json!({"api_base_url": "https://qyapi.weixin.qq.com/"})).unwrap();
    }
}

/// A WeCom department as siyu keeps it, with the unit an admin mapped it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WecomDepartment {
    pub department_id: i64,
    pub name: String,
    /// 0 for the root.
    pub parent_id: i64,
    /// The unit its members join; `null`: its nearest mapped ancestor's, else the root.
    pub unit_id: Option<UnitId>,
}

/// A welcome message as given: a string within WeCom's limit, or `null` or blank for
/// none (the next in line answers: the connector's, then the built-in greeting).
pub fn read_welcome(field: &str, value: &Value) -> Result<Option<String>, DomainError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) if s.len() > WECOM_TEXT_MAX_BYTES => Err(DomainError::invalid(
            field,
            format!("must be at most {WECOM_TEXT_MAX_BYTES} bytes (WeCom's limit)"),
        )),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(DomainError::invalid(field, "must be a string or null")),
    }
}

/// A WeCom member as siyu keeps them: the staff member they are, and the welcome
/// message sent when a customer adds them (`null`: the connector's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WecomMember {
    pub userid: String,
    pub staff_id: StaffId,
    pub name: String,
    pub main_department: Option<i64>,
    /// WeCom's: 1 active, 2 disabled, 4 not activated, 5 left.
    pub status: i64,
    /// When siyu saw them leave WeCom (ms).
    pub left_at: Option<i64>,
    pub welcome: Option<String>,
}

/// What a WeCom sync covers (`POST /api/v1/connectors/{id}/sync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncScope {
    /// Staff, then corp tags, then customers.
    #[default]
    All,
    /// Departments and members.
    Staff,
    /// Corp tags and external contacts with their follow relations.
    Customers,
}

impl SyncScope {
    pub fn staff(self) -> bool {
        matches!(self, SyncScope::All | SyncScope::Staff)
    }

    pub fn customers(self) -> bool {
        matches!(self, SyncScope::All | SyncScope::Customers)
    }
}

/// The payload of a `wecom.sync` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WecomSyncPayload {
    pub connector_id: ConnectorId,
    #[serde(default)]
    pub scope: SyncScope,
}

/// The `what` of the customer sync's checkpoint row.
pub const CUSTOMER_SYNC: &str = "customers";

/// Where a customer sync stands: the members it reads (fixed when it starts), the
/// batch of them being read and WeCom's cursor in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerSyncCheckpoint {
    pub members: Vec<String>,
    pub batch: usize,
    pub cursor: String,
    /// Set once the member list is fixed.
    pub started: bool,
}

/// What siyu holds of a WeCom corp, for the Channels page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct WecomCounts {
    /// Members synced and still in the corp.
    pub members: i64,
    /// Members who left the corp.
    pub members_left: i64,
    pub departments: i64,
    /// External contacts linked to profiles.
    pub contacts: i64,
    /// Profiles those contacts are linked to (fewer when a unionid joined two).
    pub customers: i64,
    /// Live follow relations (member × customer).
    pub relations: i64,
    /// Relations that ended (deleted by either side).
    pub relations_ended: i64,
    /// WeCom corp tags mirrored by siyu tags.
    pub mirrored_tags: i64,
    /// Customer group chats not dismissed.
    pub group_chats: i64,
    /// Customers in those chats.
    pub chat_customers: i64,
}

/// A customer group chat (客户群) of a WeCom corp, as siyu keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WecomGroupChat {
    pub chat_id: String,
    pub name: String,
    /// The owner's WeCom userid.
    pub owner_userid: String,
    /// Staff and customers in it now.
    pub members: i64,
    /// Customers in it now.
    pub customers: i64,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub dismissed_at: Option<i64>,
}

/// The longest app message text WeCom takes (bytes).
pub const APP_MESSAGE_MAX_BYTES: usize = 2_048;

/// A member an app message goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMessageRecipient {
    pub userid: String,
    pub staff_id: Option<StaffId>,
}

/// The payload of a `wecom.app_message` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMessagePayload {
    pub connector_id: ConnectorId,
    pub recipients: Vec<AppMessageRecipient>,
    pub text: String,
}

/// Checks an app message's text: 1 to 2,048 bytes, not blank.
pub fn check_app_message(text: &str) -> Result<(), DomainError> {
    if text.trim().is_empty() {
        return Err(DomainError::invalid("text", "must not be empty"));
    }
    if text.len() > APP_MESSAGE_MAX_BYTES {
        return Err(DomainError::invalid(
            "text",
            format!("must be at most {APP_MESSAGE_MAX_BYTES} bytes (WeCom's limit)"),
        ));
    }
    Ok(())
}

/// A customer's follow relation with a member, as the profile shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WecomRelationView {
    pub connector_id: ConnectorId,
    pub external_userid: String,
    /// The member's WeCom userid, and the staff member it is in siyu.
    pub member: String,
    pub staff_id: Option<StaffId>,
    pub member_name: Option<String>,
    /// The member's remark and description of the customer (mobile numbers masked).
    pub remark: String,
    pub description: String,
    /// How the member added them (WeCom's add_way) and the channel code's `state`.
    pub add_way: i64,
    pub state: String,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: i64,
    /// The corp tags on the relation, by their siyu names.
    pub corp_tags: Vec<String>,
    /// The member's personal tags, when read (`null`: not yet; a profile opened asks).
    pub personal_tags: Option<Vec<String>>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub personal_tags_at: Option<i64>,
    /// When the relation ended (deleted by either side).
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<i64>,
}
