//! The one integration test binary (one link step on a 2-core machine). Each module is a
//! topic; `standin` is the stand-in LLM server every test talks to.

mod standin;

mod agent;
mod cli;
mod data_dirs;
mod docs;
mod history;
mod history_gen;
mod history_manage;
mod history_scale;
mod history_storage;
mod mcp;
mod models;
mod providers;
mod safety;
mod sse;
mod tools;
mod whole_reply;
