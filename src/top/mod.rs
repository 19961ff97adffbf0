//! `top`: which rules the traffic hits right now. Readings of this host's sources, or of a
//! running exporter's /metrics, become rows with packet and byte rates, shown full-screen
//! and refreshed, or printed once as a table.
//!
//! Both kinds of reading go through the same exposition: a source read here is rendered by
//! the exporter's own views and read back ([`interpret`]), so a row is a series exactly as
//! /metrics keys it. The model ([`model`], [`rates`], [`rows`]) is pure; reading
//! and drawing are the only I/O.

pub mod interpret;
pub mod model;
pub mod rates;
pub mod rows;
pub mod series;
pub mod text;

pub use rows::Group;
