//! The library's CDP client checks (`tests/cdp_client.rs` of the suite),
//! run in a crate outside tidepool's workspace: the library as a service
//! gets it, resolved from this crate's own lockfile with no `[patch]`.

#[path = "../../../tests/cdp_client.rs"]
mod cdp_client;
