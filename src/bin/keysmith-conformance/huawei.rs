//! The huawei conformance server: to be written (SPEC §11.3).

use std::sync::Arc;

use axum::Router;

use crate::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    let _ = shared;
    Router::new()
}
