//! The ops command line: export schemas, inspect stored values, count versions in a namespace
//! and migrate a `wrangler kv` dump in bulk.
//!
//! The commands work on any set of [`Versioned`](kv_envelope::Versioned) types held by a
//! [`Registry`]. This crate's binary `kv-envelope` (`cargo install kv-envelope-cli`) registers
//! the types kv-envelope ships; an application gets the same commands for its own types with a
//! three-line `main` in a binary of its own that depends on this crate:
//!
//! ```no_run
//! use kv_envelope_cli::{self as cli, Registry};
//! # mod my_app {
//! #     #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
//! #     pub struct Note { pub text: String }
//! #     kv_envelope::versioned! { name: "note", versions: [Note] }
//! # }
//!
//! fn main() -> std::process::ExitCode {
//!     cli::run(Registry::with_shipped().with::<my_app::Note>())
//! }
//! ```
//!
//! Exit status: [`EXIT_OK`], [`EXIT_INVALID`] (some value is invalid or corrupt, or schemas
//! drifted), [`EXIT_USAGE`] (bad arguments, an unreadable input file or key ring),
//! [`EXIT_UNDECIDED`] (`inspect` of a value this build cannot judge, `migrate` that left sealed
//! values unopened). `docs/cli.md` shows every command.
//!
//! Sealed values: `inspect`, `migrate` and `encode` take a key ring from the environment
//! (`--keys-env PREFIX`) or from a `.dev.vars`-style file (`--keys-file FILE --keys-prefix
//! PREFIX`), never from the command line; `census` counts values per key id from metadata.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The command line reads files and draws on a terminal: there is nothing for it to do in a worker.
#[cfg(target_arch = "wasm32")]
compile_error!("kv-envelope-cli is native-only");

use std::{
    ffi::OsString,
    io::{IsTerminal, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};

mod census;
mod encode;
mod input;
mod inspect;
mod keys;
mod migrate;
mod registry;
mod schemas;
mod time;

pub use self::registry::{RegisteredType, Registry};
use self::{input::Fail, input::ValueFormat, keys::KeyArgs};
use kv_envelope::Codec;

/// Success.
pub const EXIT_OK: u8 = 0;
/// A value is invalid or corrupt (`inspect`, `migrate`; a sealed value that does not open with
/// the key its header names counts as corrupt), old values remain (`census --fail-on-old`), or
/// the schema files drifted (`schemas export --check`).
pub const EXIT_INVALID: u8 = 1;
/// Bad arguments, an input file that cannot be read or is not in the expected format, or a key
/// ring that cannot be built (a missing variable, a key that is not base64 of 32 bytes).
pub const EXIT_USAGE: u8 = 2;
/// `inspect` found a value this build cannot judge: a newer schema version, a type that is not
/// registered, or a sealed value it cannot open (no key ring given, or a key id the ring lacks).
/// `migrate` left sealed values out for the same reason (and nothing was invalid).
pub const EXIT_UNDECIDED: u8 = 3;

/// Run the command line on the process's arguments and standard streams. Shows a progress bar
/// on long runs when standard error is a terminal.
pub fn run(registry: Registry) -> ExitCode {
    let progress = std::io::stderr().is_terminal();
    let mut stdin = std::io::stdin().lock();
    // Standard output is line-buffered; a bulk file written there (`migrate -o -`) is one line
    // per entry, so buffer it. `run_inner` flushes before returning.
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut stderr = std::io::stderr().lock();
    let code = run_inner(
        std::env::args_os(),
        &registry,
        &mut stdin,
        &mut stdout,
        &mut stderr,
        progress,
    );
    ExitCode::from(code)
}

/// Run the command line on `args` (the first is the program name) with the given streams, and
/// return the exit status. For tests and embedding: never draws a progress bar, never exits
/// the process.
pub fn run_with<I, T>(
    args: I,
    registry: &Registry,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_inner(args, registry, stdin, stdout, stderr, false)
}

fn run_inner<I, T>(
    args: I,
    registry: &Registry,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    progress: bool,
) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are "errors" to clap but successes to the user.
            let (to, code): (&mut dyn Write, u8) = if e.use_stderr() {
                (&mut *stderr, EXIT_USAGE)
            } else {
                (&mut *stdout, EXIT_OK)
            };
            let _ = write!(to, "{}", e.render());
            return code;
        }
    };
    let now_ms = cli.now.unwrap_or_else(system_now_ms);
    let mut ctx = Ctx {
        registry,
        stdin,
        out: stdout,
        err: stderr,
        now_ms,
        progress: progress && !cli.no_progress,
        env: &|name| std::env::var(name).ok(),
    };
    let result = match cli.command {
        Command::Schemas(SchemasCommand::Export { dir, check }) => {
            schemas::export(&mut ctx, &dir, check)
        }
        Command::Types => types(&mut ctx),
        Command::Inspect(args) => inspect::inspect(&mut ctx, &args),
        Command::Census(args) => census::census(&mut ctx, &args),
        Command::Migrate(args) => migrate::migrate(&mut ctx, &args),
        Command::Encode(args) => encode::encode(&mut ctx, &args),
    };
    let _ = ctx.out.flush();
    match result {
        Ok(code) => code,
        Err(Fail(message)) => {
            let _ = writeln!(ctx.err, "kv-envelope: error: {message}");
            EXIT_USAGE
        }
    }
}

fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What every command gets.
pub(crate) struct Ctx<'a> {
    registry: &'a Registry,
    stdin: &'a mut dyn Read,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// The run's clock (`--now` or the system clock), ms since the epoch.
    now_ms: u64,
    /// Draw a progress bar on standard error.
    progress: bool,
    /// The process environment (`--keys-env`).
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    /// The key ring the command's options name, `None` without one.
    pub(crate) fn key_ring(&self, args: &KeyArgs) -> Result<Option<kv_envelope::KeyRing>, Fail> {
        args.load(self.env)
    }
}

/// Map a write error on a report stream.
pub(crate) fn write_err(e: std::io::Error) -> Fail {
    Fail::io("cannot write the report", &e)
}

fn types(ctx: &mut Ctx<'_>) -> Result<u8, Fail> {
    if ctx.registry.is_empty() {
        writeln!(ctx.out, "no types registered").map_err(write_err)?;
    }
    for t in ctx.registry.types() {
        writeln!(
            ctx.out,
            "{}\tv{}\t{}",
            t.name(),
            t.current_version(),
            t.rust_type()
        )
        .map_err(write_err)?;
    }
    Ok(EXIT_OK)
}

#[derive(Debug, Parser)]
#[command(
    name = "kv-envelope",
    version,
    about = "Operate kv-envelope values in Workers KV: schemas, inspect, census, bulk migration",
    after_help = "Reads the JSON that `wrangler kv key list` prints and the files `wrangler kv bulk put` accepts. See docs/cli.md."
)]
struct Cli {
    /// Pretend the current time is MS milliseconds since the Unix epoch (reproducible reports,
    /// or "what will have expired by then").
    #[arg(long, global = true, value_name = "MS")]
    now: Option<u64>,

    /// Never draw a progress bar (it is only drawn when standard error is a terminal).
    #[arg(long, global = true)]
    no_progress: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// JSON Schemas of the registered types.
    #[command(subcommand)]
    Schemas(SchemasCommand),

    /// List the registered types and their current versions.
    Types,

    /// Decode one stored value: header, validation result, payload migrated to the current
    /// version. A sealed value opens with a key ring.
    Inspect(InspectArgs),

    /// Count keys per type and key prefix by schema version, codec, sealing key id and expiry,
    /// from the metadata of `wrangler kv key list` (no values are read).
    Census(CensusArgs),

    /// Migrate a bulk dump to the current versions and write a file for `wrangler kv bulk put`;
    /// with a key ring, re-seal values sealed with an older key (key rotation).
    Migrate(MigrateArgs),

    /// Wrap a JSON payload in an envelope after validating it (hand repairs, test data). Prints
    /// the KV metadata to store with it.
    Encode(EncodeArgs),
}

#[derive(Debug, Subcommand)]
enum SchemasCommand {
    /// Write `<type>.v<N>.schema.json` for every registered type and version,
    /// `<type>.envelope.schema.json` (a whole stored value) for every registered type,
    /// `envelope.schema.json` and `metadata.schema.json`.
    Export {
        /// Directory to write into (created if missing).
        #[arg(default_value = "schemas")]
        dir: PathBuf,
        /// Write nothing; exit 1 when a file is missing, differs or is stale.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The stored value (raw bytes or base64), `-` for standard input. With `--key`, a bulk dump.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: PathBuf,
    /// How the value is given.
    #[arg(long, value_enum, default_value_t = ValueFormat::Auto)]
    format: ValueFormat,
    /// Inspect the entry with this key of a bulk dump (the `migrate` input format).
    #[arg(long)]
    key: Option<String>,
    /// The KV key a single value was read from: a sealed value opens only for its own key
    /// (with `--key`, the dump entry's key is used).
    #[arg(long, value_name = "KEY", conflicts_with = "key")]
    kv_key: Option<String>,
    #[command(flatten)]
    keys: KeyArgs,
    /// Also print the stored payload before migration (JSON codec only).
    #[arg(long)]
    stored: bool,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CensusArgs {
    /// Output of `wrangler kv key list` (JSON), `-` for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: PathBuf,
    /// The key prefix is everything before the first occurrence of this separator.
    #[arg(long, default_value = ":")]
    separator: String,
    /// Print a JSON report instead of text.
    #[arg(long)]
    json: bool,
    /// Exit 1 when a live key of a registered type is on an old schema version.
    #[arg(long)]
    fail_on_old: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// The dump: a `wrangler kv bulk put` JSON array (or `wrangler kv bulk get` output), `-`
    /// for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: PathBuf,
    /// Where to write the bulk file for `wrangler kv bulk put` (`-`: standard output).
    #[arg(
        short,
        long,
        value_name = "FILE|-",
        required_unless_present = "dry_run"
    )]
    out: Option<PathBuf>,
    /// Decide and report everything, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Re-encode with this codec (default: keep each value's codec).
    #[arg(long, value_enum)]
    codec: Option<CodecArg>,
    /// Only migrate this type (repeatable; default: every registered type).
    #[arg(long = "type", value_name = "NAME")]
    types: Vec<String>,
    /// Also rewrite values already at the current version (e.g. to refresh their metadata).
    #[arg(long)]
    include_current: bool,
    /// Seconds you expect to pass before `wrangler kv bulk put` runs: KV rejects expirations
    /// less than 60 s ahead, so expirations are kept at least 60 s + this margin ahead of now.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    put_margin: u64,
    /// A fresh `wrangler kv key list` taken just before the put: keys deleted or rewritten since
    /// the dump are left out, so the put cannot resurrect or revert them.
    #[arg(long, value_name = "FILE")]
    recheck: Option<PathBuf>,
    /// With a key ring: also seal values stored in clear (with the primary key). Without
    /// `--seal` only sealed values are re-sealed: those sealed with an older key of the ring,
    /// and any sealed value rewritten for another reason.
    #[arg(long)]
    seal: bool,
    #[command(flatten)]
    keys: KeyArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct EncodeArgs {
    /// The payload as JSON, `-` for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: PathBuf,
    /// The registered type.
    #[arg(long = "type", value_name = "NAME")]
    type_name: String,
    /// The schema version the payload is written at (default: the current one). Older versions
    /// can only be written with the JSON codec.
    #[arg(long)]
    version: Option<u32>,
    /// The codec.
    #[arg(long, value_enum, default_value_t = CodecArg::Json)]
    codec: CodecArg,
    /// Absolute expiry of the envelope, ms since the epoch.
    #[arg(long, value_name = "MS", conflicts_with = "ttl")]
    expires_at: Option<u64>,
    /// Expiry of the envelope, in seconds from now.
    #[arg(long, value_name = "SECS")]
    ttl: Option<u64>,
    /// Where to write the envelope.
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
    /// Write base64 instead of the raw bytes.
    #[arg(long)]
    base64: bool,
    /// The KV key the value will be stored under: with a key ring, the value is sealed with its
    /// primary key and bound to this key (it opens nowhere else).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    #[command(flatten)]
    keys: KeyArgs,
}

/// `--codec` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CodecArg {
    Json,
    Postcard,
}

impl From<CodecArg> for Codec {
    fn from(c: CodecArg) -> Self {
        match c {
            CodecArg::Json => Codec::Json,
            CodecArg::Postcard => Codec::Postcard,
        }
    }
}
