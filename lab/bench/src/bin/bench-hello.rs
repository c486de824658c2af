//! The lower bound: a hello-world `lambda_http` function with the same runtime (tokio's
//! current-thread flavour), tracing set-up and release profile as the receiver, and no
//! AWS clients or checks.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

async fn hello(_request: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"outcome":"hello"}"#))?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    run(service_fn(hello)).await
}
