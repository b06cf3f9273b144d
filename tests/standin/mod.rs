//! The stand-in LLM server every test talks to: OpenAI Chat Completions and Anthropic
//! Messages streaming over hand-written HTTP/1.1, scripted per request. Also built as the
//! `standin` example (process mode, see `main.rs`), so paths here are relative.
//!
//! Beyond STANDIN_API.md: `StandIn::bind(port)`, `url()`, `addr()`, `pending()`, `reset()`,
//! `set_demo(bool)`, `Captured::{method, header(name)}`, `Reply::raw(body)`,
//! `Reply::message(text)` (error text of a `status` reply). Requests rejected with 401/400
//! do not pop a reply. A request whose JSON has no `"stream": true` gets the non-streamed
//! JSON object (chat.completion / message) built from the same reply.
//!
//! A Reply as JSON (`POST /_standin/push`, `--script FILE` holds an array of these):
//! `{"kind": "openai"|"anthropic"|"status", "items": [ITEM...], "usage": [in, out],
//!   "status": 429, "message": "...", "retry_after": 2, "delay_ms": 20,
//!   "first_byte_delay_ms": 0, "cut_every": 1, "cut_at": [3, 9],
//!   "after": {"n_events": 2, "tail": {"type": "stall"|"reset"} | {"type": "keepalive"|"drip", "every_ms": 100}},
//!   "raw": "data: ...\n\n", "whole": true}` (every field but `kind` optional; `whole` answers
//!   even a streaming request with the whole JSON message, as some proxies do), where ITEM is one of
//! `{"type":"text","text":"Hello there"}` / `{"type":"text","tokens":["Hel","lo"]}`,
//! `{"type":"reasoning","tokens":[...]}`, `{"type":"thinking","text":..,"signature":..}`,
//! `{"type":"tool_call","id":..,"name":..,"arguments":"{...}"}`,
//! `{"type":"error_in_stream","message":..}`, `{"type":"error_event","error_type":..,"message":..}`.
// Each user (test binary, example) uses a different part of the API.
#![allow(dead_code)]

mod anthropic;
mod control;
mod demo;
mod encode;
mod http;
mod openai;
pub mod reply;
mod server;
mod validate;

#[cfg(test)]
mod selftest;

// Not every user names every export.
#[allow(unused_imports)]
pub use reply::Reply;
#[allow(unused_imports)]
pub use server::{Captured, StandIn};
