//! Example worker: a health check and raw byte access to the `KV` binding.
//!
//! It is the target of kv-envelope's end-to-end tests on real workerd (`wrangler dev`);
//! see `scripts/with-worker.sh`.

use worker::{event, Context, Env, Request, Response, Result, RouteContext, Router};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    Router::new()
        .get("/healthz", |_, _| Response::ok("ok"))
        .get_async("/kv/:key", kv_get)
        .put_async("/kv/:key", kv_put)
        .run(req, env)
        .await
}

/// Returns the stored bytes unchanged, or 404 when the key is absent.
async fn kv_get(_req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let Some(key) = ctx.param("key") else {
        return Response::error("missing key", 400);
    };
    match ctx.kv("KV")?.get(key).bytes().await? {
        Some(bytes) => {
            let mut resp = Response::from_bytes(bytes)?;
            resp.headers_mut()
                .set("content-type", "application/octet-stream")?;
            Ok(resp)
        }
        None => Response::error("not found", 404),
    }
}

/// Stores the request body as-is (binary safe).
async fn kv_put(mut req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let Some(key) = ctx.param("key").cloned() else {
        return Response::error("missing key", 400);
    };
    let body = req.bytes().await?;
    ctx.kv("KV")?.put_bytes(&key, &body)?.execute().await?;
    Response::ok(format!("stored {} bytes", body.len()))
}
