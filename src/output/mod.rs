//! The sinks of a publication besides HTTP: standard output and the textfile once, the
//! textfile in a loop, and the Munin plugin protocol.

pub mod munin;
pub mod once;
pub mod textfile;
