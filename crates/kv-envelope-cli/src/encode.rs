//! `encode`: wrap a JSON payload in an envelope, validated against its version's schema — to
//! repair a value by hand (`inspect --stored`, fix, `encode`, `wrangler kv key put`) or to seed
//! test data at an old version. With a key ring and `--key`, the envelope is sealed with the
//! ring's primary key for that KV key.

use serde_json::Value;

use super::{
    input::{self, Fail, Source},
    registry::Sealing,
    write_err, Ctx, EncodeArgs, EXIT_INVALID, EXIT_OK,
};
use kv_envelope::{
    __internal::schema_file_name,
    envelope::{self, Header},
    Codec, ValidationIssue,
};

pub(crate) fn encode(ctx: &mut Ctx<'_>, args: &EncodeArgs) -> Result<u8, Fail> {
    let registered = ctx.registry.get(&args.type_name).ok_or_else(|| {
        Fail(format!(
            "--type {:?} is not a registered type",
            args.type_name
        ))
    })?;
    let current = registered.current_version();
    let version = args.version.unwrap_or(current);
    if version == 0 || version > current {
        return Err(Fail(format!(
            "{} has versions 1 to {current}, not {version}",
            registered.name()
        )));
    }
    let codec = Codec::from(args.codec);
    if codec == Codec::Postcard && version != current {
        // Postcard bytes follow the Rust struct of the version, and only the current one is
        // reachable through `Versioned`; JSON needs no struct to be written.
        return Err(Fail(format!(
            "postcard envelopes can only be written at the current version (v{current}); use --codec json for v{version}"
        )));
    }
    let ring = ctx.key_ring(&args.keys)?;
    let kv_key = match (&ring, &args.key) {
        (Some(_), None) => {
            return Err(Fail(
                "a sealed value is bound to its KV key: give --key KEY with a key ring".into(),
            ))
        }
        (_, key) => key.as_deref().unwrap_or(""),
    };
    let sealing = Sealing {
        ring: ring.as_ref(),
        kv_key,
    };
    let source = Source::new(Some(&args.input));
    let text = source.read_all(ctx.stdin)?;
    let payload: Value = serde_json::from_slice(&text).map_err(|e| {
        Fail(format!(
            "{source}: the payload is not JSON ({})",
            kv_envelope::__internal::describe_json_error(&e)
        ))
    })?;
    let expires_at = match (args.expires_at, args.ttl) {
        (Some(ms), _) => Some(ms),
        (None, Some(secs)) => Some(ctx.now_ms.saturating_add(secs.saturating_mul(1000))),
        (None, None) => None,
    };

    let schema_file = schema_file_name(registered.name(), version);
    let issues = registered
        .validate(version, &payload)
        .map_err(|e| Fail(e.to_string()))?;
    if !issues.is_empty() {
        print_issues(ctx, &format!("the payload fails {schema_file}"), &issues)?;
        return Ok(EXIT_INVALID);
    }
    let built = if version == current {
        registered.encode_current(&payload, codec, expires_at, sealing)
    } else if let Some(ring) = &ring {
        registered.seal_json_at(&payload, version, expires_at, ring, kv_key)
    } else {
        envelope::encode(
            Codec::Json,
            registered.name(),
            version,
            expires_at,
            &payload,
        )
    };
    let bytes = match built {
        Ok(b) => b,
        Err(e) => {
            writeln!(ctx.out, "problem: {e}").map_err(write_err)?;
            return Ok(EXIT_INVALID);
        }
    };
    // Read it back the way a worker will: decode, validate, migrate to the current version.
    match registered.inspect(&bytes, sealing) {
        Ok(read) if read.current_issues.is_empty() => {}
        Ok(read) => {
            let what = format!(
                "the payload migrates to a value that fails {}",
                schema_file_name(registered.name(), current)
            );
            print_issues(ctx, &what, &read.current_issues)?;
            return Ok(EXIT_INVALID);
        }
        Err(e) => {
            writeln!(ctx.out, "problem: {e}").map_err(write_err)?;
            return Ok(EXIT_INVALID);
        }
    }
    let content = if args.base64 {
        let mut b = input::encode_base64(&bytes).into_bytes();
        b.push(b'\n');
        b
    } else {
        bytes
    };
    std::fs::write(&args.out, content)
        .map_err(|e| Fail::io(format!("cannot write {}", args.out.display()), &e))?;
    // The metadata `Kv` would store with it, for `wrangler kv key put --metadata`.
    let header = Header {
        codec,
        type_name: registered.name().into(),
        version,
        expires_at,
        key_id: ring.as_ref().map(|r| r.primary_id().to_string().into()),
    };
    writeln!(ctx.out, "{}", header.to_metadata()).map_err(write_err)?;
    Ok(EXIT_OK)
}

fn print_issues(ctx: &mut Ctx<'_>, what: &str, issues: &[ValidationIssue]) -> Result<(), Fail> {
    writeln!(ctx.out, "{what}:").map_err(write_err)?;
    for issue in issues {
        let path = if issue.instance_path.is_empty() {
            "/"
        } else {
            &issue.instance_path
        };
        writeln!(
            ctx.out,
            "  {path}: {} (schema {})",
            issue.message, issue.schema_path
        )
        .map_err(write_err)?;
    }
    Ok(())
}
