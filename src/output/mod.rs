//! Renderers and writers of a publication: the exposition formats and the textfile.

pub mod exposition;
pub mod textfile;
