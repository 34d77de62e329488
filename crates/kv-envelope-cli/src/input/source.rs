//! Where an input comes from (a file or standard input), and reading it.

use std::{
    fmt,
    io::Read,
    path::{Path, PathBuf},
};

use super::Fail;

/// Where an input comes from: a file, or standard input for `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub(crate) fn new(path: Option<&Path>) -> Self {
        match path {
            None => Source::Stdin,
            Some(p) if p.as_os_str() == "-" => Source::Stdin,
            Some(p) => Source::File(p.to_path_buf()),
        }
    }

    /// Size in bytes when known (files), for the progress bar.
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Source::Stdin => None,
            Source::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    pub(crate) fn open<'a>(&self, stdin: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>, Fail> {
        match self {
            Source::Stdin => Ok(Box::new(stdin)),
            Source::File(p) => std::fs::File::open(p)
                .map(|f| Box::new(f) as Box<dyn Read>)
                .map_err(|e| Fail::io(format!("cannot open {}", p.display()), &e)),
        }
    }

    pub(crate) fn read_all(&self, stdin: &mut dyn Read) -> Result<Vec<u8>, Fail> {
        let mut buf = Vec::new();
        self.open(stdin)?
            .read_to_end(&mut buf)
            .map_err(|e| Fail::io(format!("cannot read {self}"), &e))?;
        Ok(buf)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Stdin => f.write_str("standard input"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}
