//! What the criterion benches share: one request through a service, its body
//! read to the end, as every measured case does.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};

/// Calls the service and reads the whole body.
pub async fn fetch<S, B>(svc: &mut S, req: Request<Full<Bytes>>) -> Response<Bytes>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let res = svc
        .ready()
        .await
        .expect("ready")
        .call(req)
        .await
        .expect("call");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Response::from_parts(parts, body)
}
