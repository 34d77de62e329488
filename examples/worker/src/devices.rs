//! "Your devices": the signed-in user's live sessions, listed (`GET /devices` as a page,
//! `GET /sessions/devices` as JSON) and signed out one at a time (`POST /devices/revoke`).
//!
//! The library does the work (`Sessions::list_devices`, `SessionGate::revoke_device`): a device
//! is named by an opaque handle that is neither its session id nor the hash KV keys it by, and
//! only a session of the same user can revoke it. On KV the list follows KV's `list` (a login
//! at another location can be missing for about 60 s, and a revoked device keeps working there
//! for as long); on Durable Objects both are exact at once (docs/sessions.md, "Your devices").

use kv_envelope::session::{
    middleware::{cookie_header, deny, require_session},
    DenyCause, DeviceHandle, Lookup, Revocation,
};
use worker::{Context, Request};

use crate::{
    body,
    http::{html, json, see_other, Fail, OrFail, Outcome},
    pages,
};

/// `GET /devices` (page) and `GET /sessions/devices` (JSON `{"devices": [...]}`, 401 JSON
/// without a session): the current device first, then the most recently seen.
pub async fn list(req: Request, env: &worker::Env, ctx: &Context, as_page: bool) -> Outcome {
    let gate = crate::gate(env)?;
    let store = gate.store().clone();
    require_session(&gate, req, ctx, |_, admitted| async move {
        let answer = match store.list_devices(&admitted.id).await {
            Ok(Lookup::Found(devices)) if as_page => {
                html(200, pages::devices(&admitted.session, &devices), &[])
            }
            Ok(Lookup::Found(devices)) => json(
                200,
                &serde_json::json!({ "devices": devices }),
                &[("cache-control", "no-store")],
            ),
            // Logged out between the gate's read and the list's: as if it had come first.
            Ok(Lookup::NoSession(_)) => Err(Fail::new(401, "no_session", "not signed in")),
            Err(e) => Err(Fail::store("devices", e)),
        };
        Ok(answer.unwrap_or_else(Fail::into_response))
    })
    .await
    .or_fail("GET /devices")
}

/// `POST /devices/revoke` with `handle` (form or JSON): signs that device out. A form gets
/// `303 /devices` (or `303 /login` with the cookie cleared when it revoked itself); JSON gets
/// `{"revoked": "device" | "this_device"}`, or `404 no_such_device` when none of the user's
/// live sessions has that handle (gone already, or not the user's: the answer is the same).
pub async fn revoke(mut req: Request, env: &worker::Env) -> Outcome {
    let raw = body::read_capped(&mut req, body::MAX_LOGIN_BODY).await?;
    let content_type = req.headers().get("content-type").ok().flatten();
    let handle = body::field(content_type.as_deref(), &raw, "handle")?;
    let handle = DeviceHandle::parse(&handle)
        .ok_or_else(|| Fail::bad_request("bad_handle", "handle is not a device handle"))?;
    let gate = crate::gate(env)?;
    let revocation = match gate
        .revoke_device(cookie_header(&req).as_deref(), &handle)
        .await
    {
        Ok(Lookup::Found(r)) => r,
        Ok(Lookup::NoSession(reason)) => {
            return deny(&gate, &req, DenyCause::NoSession(reason)).or_fail("deny")
        }
        Err(e) => return Err(Fail::store("revoke device", e)),
    };
    let clear = gate.cookie().clear_cookie();
    match (body::is_json(content_type.as_deref()), revocation) {
        (_, Revocation::NotFound) => Err(Fail::new(
            404,
            "no_such_device",
            "none of your signed-in devices has that handle",
        )),
        (false, Revocation::Revoked) => see_other("/devices", &[]),
        (false, Revocation::RevokedCurrent) => see_other("/login", &[("set-cookie", &clear)]),
        (true, Revocation::Revoked) => json(
            200,
            &serde_json::json!({ "revoked": "device" }),
            &[("cache-control", "no-store")],
        ),
        (true, Revocation::RevokedCurrent) => json(
            200,
            &serde_json::json!({ "revoked": "this_device" }),
            &[("cache-control", "no-store"), ("set-cookie", &clear)],
        ),
    }
}
