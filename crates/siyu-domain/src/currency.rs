//! Orders in several currencies.
//!
//! A tenant keeps its figures in one currency, the *tenant currency* (CNY unless its
//! currency settings say otherwise): a customer's order total and average order value,
//! RFM's monetary value, amount conditions in segments and the dashboard's GMV. An order
//! in another currency (a Hong Kong store, a cross-border shop) keeps its own amount and
//! carries an exchange rate to the tenant currency, fixed when the order is recorded:
//! the order's own `exchange_rate` if it gives one, else the tenant's rate for that
//! currency. An order whose currency has no rate is refused with an error saying so,
//! rather than summed as if its dollars were yuan.
//!
//! Rates are kept as integer millionths, so that converting is exact integer arithmetic
//! and an order in the tenant currency (rate 1) converts to exactly itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

use crate::DomainError;
use crate::order::check_currency;

/// How many units of the tenant currency one unit of an order's currency is worth,
/// in millionths (7.1 is 7,100,000). Shown and taken as a decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExchangeRate(i64);

/// Millionths in one.
const MICROS: i64 = 1_000_000;
/// The largest rate taken: one unit of a currency worth 100,000 of another.
const MAX_RATE: f64 = 100_000.0;
/// The most one order may count for in the tenant currency, in minor units: the money
/// limit of an amount (10,000,000,000 in major units), so that sums of many orders stay
/// far from overflowing.
const MAX_CONVERTED: i64 = 1_000_000_000_000;

impl ExchangeRate {
    /// The rate of the tenant currency to itself.
    pub const ONE: ExchangeRate = ExchangeRate(MICROS);

    /// A stored rate, in millionths.
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / MICROS as f64
    }

    /// Reads a rate: a number (or a numeral in a string) above 0 and at most 100,000,
    /// with at most six decimals.
    pub fn parse(field: &str, value: &Value) -> Result<Self, DomainError> {
        let number = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite())
        .ok_or_else(|| DomainError::invalid(field, "must be a number such as 7.1"))?;
        Self::from_f64(field, number)
    }

    fn from_f64(field: &str, number: f64) -> Result<Self, DomainError> {
        if !(number > 0.0 && number <= MAX_RATE) {
            return Err(DomainError::invalid(
                field,
                "must be above 0 and at most 100000",
            ));
        }
        let scaled = number * MICROS as f64;
        let rounded = scaled.round();
        if rounded < 1.0 {
            return Err(DomainError::invalid(field, "must be at least 0.000001"));
        }
        // f64 holds a millionth of the largest rate to far better than a thousandth
        if (scaled - rounded).abs() > 1e-3 {
            return Err(DomainError::invalid(field, "has more than six decimals"));
        }
        Ok(Self(rounded as i64))
    }

    /// An amount in minor units of the order's currency, in minor units of the tenant
    /// currency, rounded to the nearest (halves away from zero).
    pub fn convert(self, minor: i64) -> i64 {
        let product = minor as i128 * self.0 as i128;
        let half = (MICROS / 2) as i128;
        let converted = if product >= 0 {
            (product + half) / MICROS as i128
        } else {
            (product - half) / MICROS as i128
        };
        converted.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

impl Serialize for ExchangeRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for ExchangeRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        ExchangeRate::parse("exchange_rate", &value)
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

/// A tenant's currency and its exchange rates, kept as the tenant setting `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencySettings {
    /// The tenant currency (ISO 4217), in which every figure is kept. It cannot change
    /// once the tenant has orders.
    pub currency: String,
    /// Rates to the tenant currency by currency code (`{"USD": 7.1, "HKD": 0.92}`),
    /// for orders that give none of their own. A change applies to orders recorded from
    /// then on.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, f64>)]
    pub rates: BTreeMap<String, ExchangeRate>,
}

impl Default for CurrencySettings {
    fn default() -> Self {
        Self {
            currency: "CNY".into(),
            rates: BTreeMap::new(),
        }
    }
}

/// At most this many rates.
const MAX_RATES: usize = 200;

impl CurrencySettings {
    /// The settings stored under this key.
    pub const KEY: &'static str = "currency";

    /// Checks the settings: currency codes of three letters (upper-cased), no rate for
    /// the tenant currency itself, at most 200 rates.
    pub fn check(self) -> Result<Self, DomainError> {
        let currency = check_currency("currency", &self.currency)?;
        if self.rates.len() > MAX_RATES {
            return Err(DomainError::invalid(
                "rates",
                format!("at most {MAX_RATES} rates"),
            ));
        }
        let mut rates = BTreeMap::new();
        for (code, rate) in self.rates {
            let field = format!("rates.{code}");
            let code = check_currency(&field, &code)?;
            if code == currency {
                return Err(DomainError::invalid(
                    field,
                    format!("{code} is the tenant currency; its rate is always 1"),
                ));
            }
            if rates.insert(code.clone(), rate).is_some() {
                return Err(DomainError::invalid(
                    field,
                    format!("{code} is named twice"),
                ));
            }
        }
        Ok(Self { currency, rates })
    }

    /// The currency and rate an order is recorded at, checked. `currency` is the order's
    /// (the tenant currency when absent), `given` its own rate, `amount` what it was paid
    /// (minor units of its currency). `stored` is the currency and rate it was recorded
    /// at before, if it was: that rate stays fixed unless the order now brings its own
    /// or is in another currency. Refused: a currency with no rate, and an order that
    /// would count for more than the money limit in the tenant currency.
    pub fn rate_of_order(
        &self,
        currency: Option<&str>,
        given: Option<ExchangeRate>,
        amount: i64,
        stored: Option<(&str, ExchangeRate)>,
    ) -> Result<(String, ExchangeRate), DomainError> {
        let currency = currency.unwrap_or(&self.currency).to_owned();
        let field = if given.is_some() {
            "exchange_rate"
        } else {
            "currency"
        };
        let rate = match (given, stored) {
            (None, Some((was, rate))) if was == currency => rate,
            _ => self.rate_for(field, &currency, given)?,
        };
        if rate.convert(amount) > MAX_CONVERTED {
            return Err(DomainError::invalid(
                "amount",
                format!(
                    "is more than 10000000000 {} at the exchange rate {}",
                    self.currency,
                    rate.as_f64()
                ),
            ));
        }
        Ok((currency, rate))
    }

    /// The rate an order in `currency` is recorded at: 1 in the tenant currency, else
    /// the order's own rate, else the tenant's. `field` names where an error points.
    pub fn rate_for(
        &self,
        field: &str,
        currency: &str,
        given: Option<ExchangeRate>,
    ) -> Result<ExchangeRate, DomainError> {
        if currency == self.currency {
            return match given {
                None => Ok(ExchangeRate::ONE),
                Some(rate) if rate == ExchangeRate::ONE => Ok(rate),
                Some(_) => Err(DomainError::invalid(
                    field,
                    format!("the order is in the tenant currency {currency}; its rate is always 1"),
                )),
            };
        }
        given
            .or_else(|| self.rates.get(currency).copied())
            .ok_or_else(|| {
                DomainError::invalid(
                    field,
                    format!(
                        "{currency} has no exchange rate to {}: give the order an exchange_rate \
                         or set a rate for {currency} in the currency settings",
                        self.currency
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rate(v: Value) -> Result<ExchangeRate, DomainError> {
        ExchangeRate::parse("exchange_rate", &v)
    }

    #[test]
    fn rates_are_read_as_millionths() {
        assert_eq!(rate(json!(7.1)).unwrap().micros(), 7_100_000);
        assert_eq!(rate(json!("0.92")).unwrap().micros(), 920_000);
        assert_eq!(rate(json!(1)).unwrap(), ExchangeRate::ONE);
        assert_eq!(rate(json!(0.000001)).unwrap().micros(), 1);
        for bad in [
            json!(0),
            json!(-1.5),
            json!(100_001),
            json!("seven"),
            json!(null),
            json!(true),
            json!(1.0000001),
        ] {
            assert!(rate(bad.clone()).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn converting_rounds_half_up_and_keeps_the_tenant_currency_exact() {
        assert_eq!(ExchangeRate::ONE.convert(12_345), 12_345);
        // $10.00 at 7.1 is ¥71.00
        assert_eq!(rate(json!(7.1)).unwrap().convert(1_000), 7_100);
        // HK$0.05 at 0.92 is 4.6 fen, 5 fen
        assert_eq!(rate(json!(0.92)).unwrap().convert(5), 5);
        // HK$0.01 at 0.92 is 0.92 fen, 1 fen; at 0.4, 0
        assert_eq!(rate(json!(0.92)).unwrap().convert(1), 1);
        assert_eq!(rate(json!(0.4)).unwrap().convert(1), 0);
        // the largest amount at the largest rate does not overflow
        let huge = rate(json!(100_000)).unwrap().convert(1_000_000_000_000);
        assert_eq!(huge, 100_000_000_000_000_000);
    }

    #[test]
    fn settings_are_checked() {
        let settings: CurrencySettings =
            serde_json::from_value(json!({"currency": "cny", "rates": {"usd": 7.1}})).unwrap();
        let settings = settings.check().unwrap();
        assert_eq!(settings.currency, "CNY");
        assert_eq!(settings.rates["USD"].micros(), 7_100_000);
        let err = |v: Value| match serde_json::from_value::<CurrencySettings>(v) {
            Ok(s) => match s.check().unwrap_err() {
                DomainError::Invalid(f) => format!("{}: {}", f.field, f.message),
                other => other.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(err(json!({"currency": "yuan"})).contains("currency"));
        assert!(err(json!({"currency": "CNY", "rates": {"CNY": 1}})).contains("always 1"));
        assert!(
            err(json!({"currency": "CNY", "rates": {"USD": 7.1, "usd": 7.2}})).contains("twice")
        );
        assert!(err(json!({"currency": "CNY", "rates": {"USD": 0}})).contains("above 0"));
        assert!(err(json!({"currency": "CNY", "rates": {"US": 7}})).contains("rates.US"));
        assert!(err(json!({"currency": "CNY", "colour": "red"})).contains("unknown field"));
    }

    #[test]
    fn an_order_takes_its_own_rate_then_the_tenants() {
        let settings = CurrencySettings {
            currency: "CNY".into(),
            rates: BTreeMap::from([("USD".into(), ExchangeRate(7_100_000))]),
        };
        let given = Some(ExchangeRate(7_000_000));
        assert_eq!(
            settings.rate_for("f", "CNY", None).unwrap(),
            ExchangeRate::ONE
        );
        assert!(settings.rate_for("f", "CNY", given).is_err());
        assert_eq!(
            settings.rate_for("f", "USD", None).unwrap().micros(),
            7_100_000
        );
        assert_eq!(
            settings.rate_for("f", "USD", given).unwrap().micros(),
            7_000_000
        );
        let missing = settings.rate_for("currency", "HKD", None).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("HKD has no exchange rate to CNY"),
            "{missing}"
        );
        assert_eq!(
            settings.rate_for("f", "HKD", given).unwrap().micros(),
            7_000_000
        );
    }

    #[test]
    fn a_recorded_orders_rate_stays_fixed_unless_it_brings_one_or_changes_currency() {
        let settings = CurrencySettings {
            currency: "CNY".into(),
            rates: BTreeMap::from([("USD".into(), ExchangeRate(7_200_000))]),
        };
        let was = Some(("USD", ExchangeRate(7_100_000)));
        let of = |currency: Option<&str>, given, stored| {
            settings
                .rate_of_order(currency, given, 1_000, stored)
                .map(|(c, r)| (c, r.micros()))
        };
        // new: the tenant's rate; recorded before: the rate it had, even with no rate now
        assert_eq!(
            of(Some("USD"), None, None).unwrap(),
            ("USD".into(), 7_200_000)
        );
        assert_eq!(
            of(Some("USD"), None, was).unwrap(),
            ("USD".into(), 7_100_000)
        );
        let without = CurrencySettings::default();
        assert_eq!(
            without
                .rate_of_order(Some("USD"), None, 1_000, was)
                .unwrap()
                .1
                .micros(),
            7_100_000
        );
        // its own rate, or another currency, decides anew
        let own = Some(ExchangeRate(7_000_000));
        assert_eq!(of(Some("USD"), own, was).unwrap().1, 7_000_000);
        assert_eq!(of(None, None, was).unwrap(), ("CNY".into(), 1_000_000));
        assert!(of(Some("HKD"), None, was).is_err());
    }

    #[test]
    fn an_order_may_not_count_for_more_than_the_money_limit() {
        let settings = CurrencySettings::default();
        let huge = Some(ExchangeRate(100_000 * MICROS));
        let err = settings
            .rate_of_order(Some("IDR"), huge, 1_000_000_000_000, None)
            .unwrap_err();
        assert!(
            matches!(&err, DomainError::Invalid(f) if f.field == "amount"),
            "{err:?}"
        );
        assert!(
            settings
                .rate_of_order(Some("IDR"), huge, 10_000_000, None)
                .is_ok()
        );
        assert!(
            settings
                .rate_of_order(None, None, MAX_CONVERTED, None)
                .is_ok()
        );
    }
}
