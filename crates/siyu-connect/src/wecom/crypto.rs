//! WeCom's callback encryption (WXBizMsgCrypt): how WeCom signs and encrypts what it
//! sends to siyu's callback URL, and how siyu answers.
//!
//! - The key is the connector's `EncodingAESKey` (43 characters of base64, without its
//!   `=`): 32 bytes; AES-256-CBC with the key's first 16 bytes as the IV.
//! - Padding is PKCS#7 over blocks of **32** bytes (1 to 32 bytes of padding; a whole
//!   block when the text is aligned), not AES's 16: a pad byte outside 1..=32 is refused.
//! - The plaintext is 16 random bytes, the message's length (u32, big-endian), the
//!   message, and the receiver's id (the corp id): a message for another corp is refused.
//! - The signature is the SHA-1 (hex) of token, timestamp, nonce and the encrypted text,
//!   sorted as plain strings and joined without a separator; it covers the encrypted
//!   text exactly as received (a `+` stays a `+`).
//!
//! Checked against the published vectors (see the tests, and `WECOM.md`).

use aes::Aes256;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use sha1::{Digest, Sha1};

type Decryptor = cbc::Decryptor<Aes256>;
type Encryptor = cbc::Encryptor<Aes256>;

/// WeCom pads to blocks of this many bytes.
const PAD_BLOCK: usize = 32;

/// Why a callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The connector's EncodingAESKey is not 43 characters of base64 making 32 bytes.
    #[error("the EncodingAESKey must be 43 characters of base64 (32 bytes)")]
    BadKey,
    /// The signature does not match: not from WeCom, or another connector's token.
    #[error("the signature does not match")]
    BadSignature,
    /// The encrypted text is not base64 of whole AES blocks, or its padding is wrong.
    #[error("the encrypted text does not decrypt: {0}")]
    BadCiphertext(&'static str),
    /// It decrypted, but is addressed to another corp (or app).
    #[error("the message is for {0:?}, not this connector")]
    WrongReceiver(String),
}

/// One connector's callback settings: its token, key and corp id.
#[derive(Clone)]
pub struct CallbackCrypto {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for CallbackCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the token and the key are secrets
        f.debug_struct("CallbackCrypto")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

impl CallbackCrypto {
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        // WeCom's keys leave the last character's spare bits set, which a strict
        // decoder refuses
        let lenient = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let bytes = lenient
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self {
            token: token.to_owned(),
            key,
            receive_id: receive_id.to_owned(),
        })
    }

    /// The signature of an encrypted text at a timestamp and nonce.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypted: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypted];
        parts.sort_unstable();
        hex(&Sha1::digest(parts.concat().as_bytes()))
    }

    fn check_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.signature(timestamp, nonce, encrypted);
        if constant_time_eq(
            expected.as_bytes(),
            msg_signature.to_ascii_lowercase().as_bytes(),
        ) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }

    /// The URL check WeCom makes when the callback URL is saved: the `echostr`'s
    /// plaintext, to answer as the body.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String, CryptoError> {
        self.decrypt(msg_signature, timestamp, nonce, echostr)
    }

    /// A callback's message (the `<Encrypt>` element of its body), checked and decrypted.
    pub fn decrypt(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<String, CryptoError> {
        self.check_signature(msg_signature, timestamp, nonce, encrypted)?;
        let mut data = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::BadCiphertext("not base64"))?;
        if data.is_empty() || data.len() % PAD_BLOCK != 0 {
            return Err(CryptoError::BadCiphertext("not whole blocks"));
        }
        let iv: [u8; 16] = self.key[..16].try_into().expect("16 bytes");
        let plain = Decryptor::new(&self.key.into(), &iv.into())
            .decrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut data)
            .map_err(|_| CryptoError::BadCiphertext("not whole blocks"))?;
        let pad = usize::from(*plain.last().expect("not empty"));
        if !(1..=PAD_BLOCK).contains(&pad) || pad > plain.len() {
            return Err(CryptoError::BadCiphertext("bad padding"));
        }
        let plain = &plain[..plain.len() - pad];
        if plain.len() < 20 {
            return Err(CryptoError::BadCiphertext("too short"));
        }
        let len = u32::from_be_bytes(plain[16..20].try_into().expect("4 bytes")) as usize;
        let rest = &plain[20..];
        if len > rest.len() {
            return Err(CryptoError::BadCiphertext("a length past its end"));
        }
        let (msg, receiver) = rest.split_at(len);
        let receiver = String::from_utf8_lossy(receiver);
        if receiver != self.receive_id {
            return Err(CryptoError::WrongReceiver(receiver.into_owned()));
        }
        String::from_utf8(msg.to_vec()).map_err(|_| CryptoError::BadCiphertext("not UTF-8"))
    }

    /// Encrypts a message (with 16 bytes of randomness) as WeCom does.
    pub fn encrypt(&self, msg: &str) -> String {
        let random: [u8; 16] = rand::random();
        self.encrypt_with(msg, random)
    }

    fn encrypt_with(&self, msg: &str, random: [u8; 16]) -> String {
        let mut plain = Vec::with_capacity(20 + msg.len() + self.receive_id.len() + PAD_BLOCK);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.receive_id.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let iv: [u8; 16] = self.key[..16].try_into().expect("16 bytes");
        let len = plain.len();
        let encrypted = Encryptor::new(&self.key.into(), &iv.into())
            .encrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut plain, len)
            .expect("whole blocks");
        STANDARD.encode(encrypted)
    }

    /// An encrypted, signed reply body (for a callback answered with a message).
    pub fn encrypt_reply(&self, msg: &str, timestamp: &str, nonce: &str) -> String {
        let encrypted = self.encrypt(msg);
        let signature = self.signature(timestamp, nonce, &encrypted);
        format!(
            "<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature>\
             <TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference (no timing hint at the signature).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_a() -> CallbackCrypto {
        CallbackCrypto::new(
            "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
            "ww1436e0e65a779aee",
        )
        .unwrap()
    }

    const A_MESSAGE: &str = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+";

    #[test]
    fn the_official_sample_verifies_its_url_and_decrypts_its_message() {
        let crypto = set_a();
        assert_eq!(
            crypto
                .verify_url(
                    "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
                    "1476416373",
                    "47744683",
                    "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==",
                )
                .unwrap(),
            "1288432023552776189"
        );
        assert_eq!(
            crypto
                .decrypt(
                    "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
                    "1476422779",
                    "1597212914",
                    A_MESSAGE,
                )
                .unwrap(),
            "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
        );
    }

    #[test]
    fn a_second_sdks_vector_verifies_with_the_echostr_as_given() {
        let crypto = CallbackCrypto::new(
            "123456",
            "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
            "wx49f0ab532d5d035a",
        )
        .unwrap();
        let echostr = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==";
        assert_eq!(
            crypto
                .verify_url(
                    "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
                    "1411443780",
                    "437374425",
                    echostr
                )
                .unwrap(),
            "5927782489442352469"
        );
        // a `+` read as a space (a form decoder's habit) no longer matches
        assert_eq!(
            crypto.verify_url(
                "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
                "1411443780",
                "437374425",
                &echostr.replace('+', " ")
            ),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn what_siyu_encrypts_decrypts_and_the_padding_fills_to_thirty_two() {
        let crypto = set_a();
        for msg in [
            "",
            "ok",
            "一二三四五六七八九十",
            &"x".repeat(10),
            &"长".repeat(100),
        ] {
            let encrypted = crypto.encrypt(msg);
            let raw = STANDARD.decode(&encrypted).unwrap();
            assert_eq!(raw.len() % 32, 0);
            let signature = crypto.signature("1", "2", &encrypted);
            assert_eq!(
                crypto.decrypt(&signature, "1", "2", &encrypted).unwrap(),
                msg
            );
        }
        // aligned: a whole block of padding (16 + 4 + 12 + 18-byte corp id = 50 → 64)
        let aligned = "y".repeat(64 - 16 - 4 - 18);
        let raw = STANDARD.decode(crypto.encrypt(&aligned)).unwrap();
        assert_eq!(raw.len(), 96, "a whole block of padding when aligned");
        let reply = crypto.encrypt_reply("success", "1476422779", "n1");
        assert!(
            reply.contains("<TimeStamp>1476422779</TimeStamp>"),
            "{reply}"
        );
    }

    #[test]
    fn bad_input_is_refused_with_its_reason() {
        let crypto = set_a();
        assert_eq!(
            crypto.decrypt("0000", "1476422779", "1597212914", A_MESSAGE),
            Err(CryptoError::BadSignature)
        );
        let sign = |text: &str| crypto.signature("1", "2", text);
        assert_eq!(
            crypto.decrypt(&sign("not base64!"), "1", "2", "not base64!"),
            Err(CryptoError::BadCiphertext("not base64"))
        );
        let short = STANDARD.encode([0u8; 16]);
        assert_eq!(
            crypto.decrypt(&sign(&short), "1", "2", &short),
            Err(CryptoError::BadCiphertext("not whole blocks"))
        );
        // a message for another corp
        let other = CallbackCrypto::new(
            "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
            "ww-another-corp",
        )
        .unwrap();
        let foreign = other.encrypt("hello");
        assert_eq!(
            crypto.decrypt(&sign(&foreign), "1", "2", &foreign),
            Err(CryptoError::WrongReceiver("ww-another-corp".into()))
        );
        // a padding byte outside 1..=32: encrypt blocks whose last byte is 0
        let iv: [u8; 16] = crypto.key[..16].try_into().unwrap();
        let mut block = [0u8; 32];
        let len = block.len();
        let zeros = Encryptor::new(&crypto.key.into(), &iv.into())
            .encrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut block, len)
            .unwrap();
        let zeros = STANDARD.encode(zeros);
        assert_eq!(
            crypto.decrypt(&sign(&zeros), "1", "2", &zeros),
            Err(CryptoError::BadCiphertext("bad padding"))
        );
        for key in [
            "short",
            &"a".repeat(44),
            "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhU!",
        ] {
            assert_eq!(
                CallbackCrypto::new("t", key, "c").map(|_| ()),
                Err(CryptoError::BadKey)
            );
        }
    }
}
