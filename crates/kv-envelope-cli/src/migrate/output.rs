//! Where `migrate` writes what changed: the bulk file for `wrangler kv bulk put` (or stdout),
//! through a temporary file renamed into place by `finish` and removed if the run fails first.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::input::Fail;

/// One line of the output bulk file (the `wrangler kv bulk put` format).
#[derive(Serialize)]
pub(super) struct OutEntry<'a> {
    pub(super) key: &'a str,
    pub(super) value: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) base64: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expiration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expiration_ttl: Option<u64>,
    /// Exactly the metadata text `Kv` writes, key order included.
    pub(super) metadata: Box<RawValue>,
}

/// The output bulk file, written to a temporary file and renamed into place on success, so a
/// failed run never leaves a half-written file that someone could `bulk put`.
pub(super) struct Output<'w> {
    sink: Sink<'w>,
    first: bool,
}

enum Sink<'w> {
    None,
    Stdout(&'w mut dyn Write),
    File {
        tmp: PathBuf,
        dest: PathBuf,
        file: BufWriter<File>,
    },
}

impl<'w> Output<'w> {
    pub(super) fn open(
        dest: Option<&Path>,
        dry_run: bool,
        stdout: &'w mut dyn Write,
    ) -> Result<Self, Fail> {
        let sink = match dest {
            _ if dry_run => Sink::None,
            None => Sink::None,
            Some(p) if p.as_os_str() == "-" => Sink::Stdout(stdout),
            Some(p) => {
                let name = p
                    .file_name()
                    .map_or_else(|| "bulk.json".into(), |n| n.to_string_lossy().into_owned());
                let tmp = p.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
                let file = File::create(&tmp)
                    .map_err(|e| Fail::io(format!("cannot create {}", tmp.display()), &e))?;
                Sink::File {
                    tmp,
                    dest: p.to_path_buf(),
                    file: BufWriter::new(file),
                }
            }
        };
        let mut out = Output { sink, first: true };
        out.raw(b"[")?;
        Ok(out)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), Fail> {
        let result = match &mut self.sink {
            Sink::None => Ok(()),
            Sink::Stdout(w) => w.write_all(bytes),
            Sink::File { file, .. } => file.write_all(bytes),
        };
        result.map_err(|e| Fail::io("cannot write the bulk file", &e))
    }

    pub(super) fn push(&mut self, entry: &OutEntry<'_>) -> Result<(), Fail> {
        let line = serde_json::to_string(entry).map_err(|_| {
            Fail(format!(
                "cannot serialize the entry for key {:?}",
                entry.key
            ))
        })?;
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        self.raw(sep)?;
        self.raw(line.as_bytes())
    }

    /// Close the array and move the file into place.
    pub(super) fn finish(mut self) -> Result<(), Fail> {
        self.raw(if self.first { b"]\n" } else { b"\n]\n" })?;
        match std::mem::replace(&mut self.sink, Sink::None) {
            Sink::None => Ok(()),
            Sink::Stdout(w) => w
                .flush()
                .map_err(|e| Fail::io("cannot write the bulk file", &e)),
            Sink::File { tmp, dest, file } => {
                let file = file
                    .into_inner()
                    .map_err(|e| Fail::io("cannot write the bulk file", e.error()))?;
                file.sync_all()
                    .map_err(|e| Fail::io("cannot write the bulk file", &e))?;
                drop(file);
                std::fs::rename(&tmp, &dest).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    Fail::io(
                        format!("cannot move the bulk file to {}", dest.display()),
                        &e,
                    )
                })
            }
        }
    }
}

impl Drop for Output<'_> {
    fn drop(&mut self) {
        // Reached with a file only when the run failed before `finish`.
        if let Sink::File { tmp, .. } = &self.sink {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
