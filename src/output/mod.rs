//! Renderers and writers of a publication: the exposition formats, the textfile and the
//! Munin plugin protocol.

pub mod deflate;
mod escape;
pub mod exposition;
pub mod munin;
pub mod textfile;
