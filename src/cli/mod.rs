//! The ops command line.
