//! The smallest real worker on kv-envelope: a versioned profile with a migration, sessions
//! (login cookie, a protected route, logout), one cached computation, and the schemas exported
//! for other services (`src/bin/export_schemas.rs`).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A profile as the first version of the app stored it.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProfileV1 {
    pub name: String,
}

/// The profile today: version 2 added the language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Profile {
    pub name: String,
    pub language: String,
}

/// How a v1 profile still in KV reads as today's.
impl From<ProfileV1> for Profile {
    fn from(v1: ProfileV1) -> Self {
        Profile {
            name: v1.name,
            language: "en".into(),
        }
    }
}

kv_envelope::versioned! { name: "profile", versions: [ProfileV1, Profile] }

/// Something slow to compute, worth caching.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct Forecast {
    pub summary: String,
}

kv_envelope::versioned! { name: "forecast", versions: [Forecast] }

// The worker itself builds for wasm32 only; the types above build natively too, for the schema
// export (src/bin/export_schemas.rs) and the migration's property test (tests/profile.rs).
#[cfg(target_arch = "wasm32")]
mod app {
    use std::time::Duration;

    use kv_envelope::{
        backend::WorkersKv,
        cache::{CachePolicy, KvCache},
        session::{
            middleware::{cookie_header, error_response, refuse_cross_origin, require_session},
            SameOrigin, SessionGate, SessionInit, Sessions,
        },
        Kv, TypedStore, Versioned,
    };
    use worker::{event, Context, Env, Method, Request, Response, Result};

    use super::{Forecast, Profile};

    /// Once per isolate, before its first request: compile the schema validators.
    #[event(start)]
    fn start() {
        let warm = Profile::warm_up().and_then(|()| Forecast::warm_up());
        if let Err(e) = warm {
            worker::console_error!("warm-up: {e}");
        }
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
        // Errors from kv-envelope (`?`) get their status: 409, 429, 503, never a bare 500.
        match route(req, env, ctx).await {
            Err(e) => error_response(&e),
            answer => answer,
        }
    }

    async fn route(mut req: Request, env: Env, ctx: Context) -> Result<Response> {
        // Login CSRF and friends: another site's form cannot post here.
        if let Some(refused) = refuse_cross_origin(&SameOrigin::new(), &req)? {
            return Ok(refused);
        }
        let kv = Kv::new(WorkersKv::from_env(&env, "KV")?);
        let gate = SessionGate::new(Sessions::new(kv.clone()));
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/login") => {
                // A real app checks a password or a magic link here.
                let form = req.form_data().await?;
                let Some(worker::FormEntry::Field(email)) = form.get("email") else {
                    return Response::error("an email is required", 400);
                };
                let init = SessionInit::new(email.to_lowercase(), email);
                let new = gate.login(cookie_header(&req).as_deref(), init).await?;
                let mut res = Response::ok("logged in")?;
                res.headers_mut().set("Set-Cookie", &new.set_cookie)?;
                Ok(res)
            }
            (Method::Post, "/logout") => {
                let clear = gate.logout(cookie_header(&req).as_deref()).await?;
                let mut res = Response::ok("logged out")?;
                res.headers_mut().set("Set-Cookie", &clear)?;
                Ok(res)
            }
            (Method::Get, "/profile") => {
                require_session(&gate, req, &ctx, |_req, me| async move {
                    let profiles: TypedStore<Profile> = TypedStore::new(kv).with_prefix("profile");
                    match profiles.get(&me.session.user_id).await? {
                        Some(profile) => Response::from_json(&profile),
                        None => Response::error("no profile yet", 404),
                    }
                })
                .await
            }
            (Method::Put, "/profile") => {
                require_session(&gate, req, &ctx, |mut req, me| async move {
                    let Ok(profile) = req.json::<Profile>().await else {
                        return Response::error("expected {\"name\", \"language\"}", 400);
                    };
                    let profiles: TypedStore<Profile> = TypedStore::new(kv).with_prefix("profile");
                    profiles.put(&me.session.user_id, &profile, None).await?;
                    Response::from_json(&profile)
                })
                .await
            }
            (Method::Get, "/forecast") => {
                let cache: KvCache<Forecast> = KvCache::new(kv);
                let policy = CachePolicy::new(Duration::from_secs(300));
                let forecast = cache
                    .get_or_compute("today", &policy, || async {
                        Forecast {
                            summary: "sunny".into(),
                        } // the slow part, run once per 5 min
                    })
                    .await;
                let mut res = Response::from_json(&forecast.value)?;
                res.headers_mut().set("x-cache", forecast.status.as_str())?;
                Ok(res)
            }
            _ => Response::error("not found", 404),
        }
    }
}
