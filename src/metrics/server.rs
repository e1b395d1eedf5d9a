//! The HTTP endpoint: `/metrics` (Prometheus text format 0.0.4), `/` (a short page linking to
//! it) and `/healthz`, served by hyper 1 (HTTP/1.1 only) on a current-thread tokio runtime
//! in its own thread. Connections are capped and idle ones time out, so a misbehaving client
//! cannot pile up state.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::sync::Semaphore;

/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 64;
/// Longest a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one connection stays open (then it is closed after its current request).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

const INDEX: &str = "<!DOCTYPE html>\n<html><head><title>mirrorflow</title></head><body>\n\
<h1>mirrorflow</h1>\n<p>Traffic-visibility probe. Prometheus metrics: \
<a href=\"/metrics\">/metrics</a>. Health: <a href=\"/healthz\">/healthz</a>.</p>\n\
</body></html>\n";

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The text exposition of everything in `registry`.
pub fn render(registry: &Registry) -> Result<Vec<u8>, prometheus::Error> {
    let mut buf = Vec::with_capacity(64 << 10);
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    Ok(buf)
}

fn handle(registry: &Registry, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"method not allowed\n"),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => match render(registry) {
            Ok(body) => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(body),
            ),
            Err(e) => respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                Bytes::from(format!("encoding metrics: {e}\n")),
            ),
        },
        "/" => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from_static(INDEX.as_bytes()),
        ),
        "/healthz" => respond(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"ok\n"),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"not found; try /metrics\n"),
        ),
    }
}

async fn accept_loop(listener: TcpListener, registry: Arc<Registry>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mirrorflow: metrics: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let response = handle(&registry, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            if tokio::time::timeout(CONNECTION_TIMEOUT, conn.as_mut())
                .await
                .is_err()
            {
                // Old keep-alive connection: finish the request in flight, then close.
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(HEADER_TIMEOUT, conn).await;
            }
            drop(permit);
        });
    }
}

/// Binds `addr` now (so a taken port is reported before anything runs) and serves `registry`
/// from a thread of its own until the process exits. Returns the bound address.
pub fn serve(addr: SocketAddr, registry: Registry) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let registry = Arc::new(registry);
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || runtime.block_on(accept_loop(listener, registry)))?;
    Ok(local)
}
