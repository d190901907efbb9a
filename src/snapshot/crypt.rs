//! Encryption at rest with age (X25519 recipients): a store that leaves the
//! machine must not hand patient data to whoever can read the bucket.
//!
//! The stored archive is `age(id frame + zstd(tar))`; the manifest stays in
//! the clear so that `list`, `show`, `prune` and the integrity checks work
//! without the identity: it holds names, sizes, modes, SHA-256 hashes of the
//! files (over the plaintext, so `verify` proves the data), the SHA-256 and
//! size of the stored ciphertext (so corruption is found without the key),
//! Postgres' version and system identifier, database names and row
//! estimates, labels — never a row value, never a key. The recipients'
//! public keys are recorded, so an operator knows which identity opens it.
//!
//! Reading an encrypted archive needs an identity file (`--identity`,
//! `WARD_AGE_IDENTITY`, `ward.toml [store] identity`); without one, or with
//! one that opens nothing, ward stops with one line saying so.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::UsageError;

/// What the manifest records about an encrypted archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// "age-x25519".
    pub scheme: String,
    /// The recipients' public keys (`age1…`): which identity opens it.
    pub recipients: Vec<String>,
}

pub(crate) const SCHEME: &str = "age-x25519";

/// The keys a store uses: recipients to encrypt new archives to, the
/// identity file that opens them, and whether encryption is required.
#[derive(Clone, Default)]
pub struct Keys {
    recipients: Vec<age::x25519::Recipient>,
    identity: Option<PathBuf>,
    pub require: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("recipients", &self.recipients.len())
            .field("identity", &self.identity)
            .field("require", &self.require)
            .finish()
    }
}

impl Keys {
    /// Parses recipients (`age1…`, given directly or one per line in
    /// recipients files, `#` comments allowed).
    pub fn new(
        recipients: &[String],
        recipient_files: &[PathBuf],
        identity: Option<PathBuf>,
        require: bool,
    ) -> Result<Keys> {
        let mut all = Vec::new();
        for r in recipients
            .iter()
            .flat_map(|r| r.split([',', ' ']))
            .filter(|r| !r.is_empty())
        {
            all.push(parse_recipient(r, "--encrypt-to / WARD_AGE_RECIPIENTS")?);
        }
        for file in recipient_files {
            let text = std::fs::read_to_string(file).map_err(|e| {
                UsageError(format!(
                    "cannot read the recipients file {}: {e} — fix the path",
                    file.display()
                ))
            })?;
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                all.push(parse_recipient(line, &file.display().to_string())?);
            }
        }
        Ok(Keys {
            recipients: all,
            identity,
            require,
        })
    }

    /// Whether an identity file was given.
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// Whether new archives are encrypted.
    pub fn encrypting(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// What the manifest of an archive encrypted with these keys records.
    pub fn facts(&self) -> Encryption {
        Encryption {
            scheme: SCHEME.into(),
            recipients: self.recipients.iter().map(|r| r.to_string()).collect(),
        }
    }

    /// Wraps `out` so that what is written to it is encrypted.
    pub(crate) fn encrypt<W: Write>(&self, out: W) -> Result<age::stream::StreamWriter<W>> {
        let encryptor = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| anyhow::anyhow!("cannot encrypt: {e}"))?;
        Ok(encryptor.wrap_output(out)?)
    }

    /// Wraps `input` (an archive of snapshot `name`) in a decrypting reader.
    pub(crate) fn decrypt<R: Read>(
        &self,
        input: R,
        name: &str,
    ) -> Result<age::stream::StreamReader<R>> {
        let Some(file) = &self.identity else {
            return crate::error::usage(format!(
                "snapshot {name:?} is encrypted — pass --identity FILE (or set WARD_AGE_IDENTITY) \
                 naming the age identity that opens it"
            ));
        };
        let identities = load_identities(file)?;
        let decryptor = age::Decryptor::new(input).map_err(|e| {
            anyhow::Error::new(super::Damaged(format!(
                "snapshot {name:?}: the archive is not a readable age file ({e})"
            )))
        })?;
        decryptor
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => UsageError(format!(
                    "the identity in {} cannot open snapshot {name:?} (it was encrypted to other \
                     keys) — pass the identity of one of the recipients `ward snapshot show` lists",
                    file.display()
                ))
                .into(),
                other => anyhow::Error::new(super::Damaged(format!(
                    "snapshot {name:?}: cannot decrypt the archive ({other})"
                ))),
            })
    }
}

fn parse_recipient(text: &str, from: &str) -> Result<age::x25519::Recipient> {
    age::x25519::Recipient::from_str(text.trim()).map_err(|_| {
        UsageError(format!(
            "{:?} (from {from}) is not an age X25519 recipient — expected a public key \
             starting with age1 (age-keygen -y IDENTITY prints it)",
            text.chars().take(80).collect::<String>()
        ))
        .into()
    })
}

/// The identities in an age identity file (its contents are never shown).
fn load_identities(file: &Path) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>> {
    let parsed = age::IdentityFile::from_file(file.display().to_string())
        .map_err(|e| {
            UsageError(format!(
                "cannot read the age identity file {}: {} — fix --identity / WARD_AGE_IDENTITY",
                file.display(),
                e.kind()
            ))
        })?
        .into_identities()
        .map_err(|_| {
            UsageError(format!(
                "{} holds no usable age identity (expected AGE-SECRET-KEY-1… lines)",
                file.display()
            ))
        })?;
    if parsed.is_empty() {
        return crate::error::usage(format!(
            "{} holds no age identity (expected AGE-SECRET-KEY-1… lines)",
            file.display()
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn encrypts_and_decrypts_and_refuses_the_wrong_key() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let idf = dir.path().join("id.txt");
        std::fs::write(&idf, format!("{}\n", id.to_string().expose_secret())).unwrap();
        let otherf = dir.path().join("other.txt");
        std::fs::write(&otherf, format!("{}\n", other.to_string().expose_secret())).unwrap();
        let keys = Keys::new(&[id.to_public().to_string()], &[], Some(idf), false).unwrap();
        let mut w = keys.encrypt(Vec::new()).unwrap();
        w.write_all(b"rows").unwrap();
        let ct = w.finish().unwrap();
        let mut out = String::new();
        keys.decrypt(&ct[..], "n")
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "rows");
        let wrong = Keys::new(&[], &[], Some(otherf), false).unwrap();
        let err = wrong.decrypt(&ct[..], "n").err().unwrap().to_string();
        assert!(err.contains("cannot open"), "{err}");
        let none = Keys::default().decrypt(&ct[..], "n").err().unwrap();
        assert!(none.to_string().contains("--identity"));
        assert!(Keys::new(&["nope".into()], &[], None, false).is_err());
    }
}
