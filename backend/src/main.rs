//! The `backend` binary: the tenant-isolated function, run by the Lambda runtime loop.

use backend::{TenantPin, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let pin: &'static TenantPin = Box::leak(Box::default());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            handle(pin, event.context.tenant_id.as_deref(), event.payload.get())
                .map_err(Error::from)
        },
    ))
    .await
}
