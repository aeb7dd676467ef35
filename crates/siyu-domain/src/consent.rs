//! Consent (PIPL): per customer and channel, whether the brand may contact them. Every
//! change is kept with its source and time; the newest per channel is in force. Every
//! sender asks [`may_contact`] before it sends: an opt-out on the channel, or on `all`
//! (do not contact at all), forbids; without any record the brand may contact the
//! customer on channels where the customer reached out first (a WeCom friend, a
//! follower of the official account).

use serde::Serialize;
use utoipa::ToSchema;

use crate::order::string_enum;

string_enum!(
    /// A channel consent is given or withdrawn for; `all` is every channel at once.
    ConsentChannel {
        All => "all",
        Wecom => "wecom",
        Sms => "sms",
        Email => "email",
        Phone => "phone",
        OfficialAccount => "official_account",
        MiniProgram => "mini_program",
        AppPush => "app_push",
    }
);

string_enum!(
    /// Opted in (may be contacted) or opted out (do not contact).
    ConsentStatus {
        OptIn => "opt_in",
        OptOut => "opt_out",
    }
);

/// The consent in force for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Consent {
    pub channel: ConsentChannel,
    pub status: ConsentStatus,
    /// Where it came from: `api`, `console`, `import`, `event`, a channel name.
    pub source: String,
    pub note: Option<String>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// Who recorded it.
    pub recorded_by: String,
}

/// Whether a sender may contact a customer on `channel`, given the consents in force.
pub fn may_contact(consents: &[Consent], channel: ConsentChannel) -> bool {
    !consents.iter().any(|c| {
        c.status == ConsentStatus::OptOut
            && (c.channel == channel || c.channel == ConsentChannel::All)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(channel: ConsentChannel, status: ConsentStatus) -> Consent {
        Consent {
            channel,
            status,
            source: "api".into(),
            note: None,
            at: 0,
            recorded_by: "test".into(),
        }
    }

    #[test]
    fn an_opt_out_forbids_its_channel_and_all_forbids_every_one() {
        use ConsentChannel::*;
        use ConsentStatus::*;
        assert!(may_contact(&[], Sms));
        let sms_out = [consent(Sms, OptOut), consent(Email, OptIn)];
        assert!(!may_contact(&sms_out, Sms));
        assert!(may_contact(&sms_out, Email));
        assert!(may_contact(&sms_out, Wecom));
        let all_out = [consent(All, OptOut), consent(Email, OptIn)];
        assert!(!may_contact(&all_out, Email));
        assert!(!may_contact(&all_out, Wecom));
    }
}
