//! Access tokens: `gettoken` hands out one token per secret and the same token while it
//! is valid (WeCom's documented behaviour, which a client that "refreshes early" must
//! live with); every other call is checked against them in `server`.

use serde_json::json;

use crate::server::{ALNUM, ApiError, ApiResult, Obj, Req, State, random_string};

/// An issued token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub secret: String,
    pub expires_ms: u64,
    pub revoked: bool,
}

/// `GET gettoken?corpid&corpsecret`: the same token while it is valid.
pub(crate) fn gettoken(state: &mut State, req: &Req) -> ApiResult {
    let corpid = req.q("corpid").filter(|s| !s.is_empty());
    let secret = req.q("corpsecret").filter(|s| !s.is_empty());
    let corpid = corpid.ok_or_else(|| ApiError::code(41002))?;
    let secret = secret.ok_or_else(|| ApiError::code(41004))?;
    if corpid != state.corp.corp_id {
        return Err(ApiError::code(40013));
    }
    if !state.corp.secrets.iter().any(|s| s == secret) {
        return Err(ApiError::new(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    }
    let rt = &mut state.rt;
    let now_ms = req.now_ms;
    if let Some(token) = rt.current.get(secret)
        && let Some(t) = rt
            .tokens
            .get(token)
            .filter(|t| !t.revoked && now_ms < t.expires_ms)
    {
        let mut out = Obj::new();
        out.insert("access_token".into(), json!(token));
        out.insert(
            "expires_in".into(),
            json!((t.expires_ms - now_ms).div_ceil(1000)),
        );
        return Ok(out);
    }
    let token = random_string(96, ALNUM);
    rt.tokens.insert(
        token.clone(),
        Token {
            secret: secret.to_owned(),
            expires_ms: now_ms + rt.token_ttl * 1000,
            revoked: false,
        },
    );
    rt.current.insert(secret.to_owned(), token.clone());
    let mut out = Obj::new();
    out.insert("access_token".into(), json!(token));
    out.insert("expires_in".into(), json!(rt.token_ttl));
    Ok(out)
}
