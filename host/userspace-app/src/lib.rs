//! The parts of the container app other crates use: the downward-API
//! annotations parser (the fuzz targets drive it).

pub mod annotations;
