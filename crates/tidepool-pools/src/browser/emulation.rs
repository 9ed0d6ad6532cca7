//! What a lease's pages pretend to be: user agent, viewport, locale,
//! timezone, position and extra request headers, set on each page before
//! the lease gets it.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Emulation settings for every page of a lease, as a pool default
/// ([`BrowserPoolConfig::emulation`](super::BrowserPoolConfig::emulation))
/// or a lease's own ([`LeaseOptions::emulation`](super::LeaseOptions::emulation)).
///
/// Each setting is one CDP command on the page's session, all sent at
/// once before the lease is handed out (about one round trip); an unset
/// one costs nothing. They last as long as the page's session does: under
/// [`Isolation::Context`](super::Isolation::Context) the next lease gets a
/// new page, under [`Isolation::Wipe`](super::Isolation::Wipe) the wipe
/// clears them, and under [`Isolation::None`](super::Isolation::None) the
/// next lease inherits them, as it inherits everything.
///
/// - `user_agent`: `navigator.userAgent` and the `User-Agent` header; with
///   a `locale`, also `navigator.language`.
/// - `locale`: `Intl`'s default locale and the `Accept-Language` header.
/// - `geolocation`: what `navigator.geolocation` answers; the lease's
///   context is granted the permission to ask.
///
/// ```
/// use tidepool_pools::browser::{Emulation, Viewport};
///
/// let phone = Emulation::new()
///     .user_agent("Mozilla/5.0 (Linux; Android 14) tidepool")
///     .viewport(Viewport::new(390, 844).device_scale_factor(3.0))
///     .locale("fr-CA")
///     .timezone("America/Montreal")
///     .geolocation(45.50, -73.57)
///     .header("X-Crawler", "tidepool");
/// assert!(phone.validate("lease.emulation").is_ok());
/// let bad = Emulation::new().geolocation(91.0, 0.0).validate("lease.emulation");
/// assert!(bad.unwrap_err().to_string().contains("lease.emulation.geolocation"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Emulation {
    /// The user agent string.
    pub user_agent: Option<String>,
    /// The window's size and device scale.
    pub viewport: Option<Viewport>,
    /// A BCP 47 locale, such as `fr-CA`.
    pub locale: Option<String>,
    /// An IANA timezone, such as `America/Montreal`.
    pub timezone: Option<String>,
    /// The device's position.
    pub geolocation: Option<Geolocation>,
    /// Headers added to every request of the page.
    pub extra_headers: BTreeMap<String, String>,
}

/// A viewport: CSS pixels and the device pixels per CSS pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Viewport {
    /// Width in CSS pixels.
    pub width: u32,
    /// Height in CSS pixels.
    pub height: u32,
    /// Device pixels per CSS pixel (`window.devicePixelRatio`).
    pub device_scale_factor: f64,
}

impl Viewport {
    /// `width` by `height` CSS pixels at a device scale of 1.
    pub fn new(width: u32, height: u32) -> Viewport {
        Viewport {
            width,
            height,
            device_scale_factor: 1.0,
        }
    }

    /// With `factor` device pixels per CSS pixel.
    pub fn device_scale_factor(mut self, factor: f64) -> Viewport {
        self.device_scale_factor = factor;
        self
    }
}

/// A position, in degrees, and its accuracy in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Geolocation {
    /// Latitude, -90 to 90.
    pub latitude: f64,
    /// Longitude, -180 to 180.
    pub longitude: f64,
    /// Accuracy in metres.
    pub accuracy: f64,
}

/// The largest viewport side Chromium takes, in pixels.
const MAX_SIDE: u32 = 10_000_000;

impl Emulation {
    /// No emulation; add settings with the methods below.
    pub fn new() -> Emulation {
        Emulation::default()
    }

    /// Sets the user agent.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Emulation {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets the viewport.
    pub fn viewport(mut self, viewport: Viewport) -> Emulation {
        self.viewport = Some(viewport);
        self
    }

    /// Sets the locale.
    pub fn locale(mut self, locale: impl Into<String>) -> Emulation {
        self.locale = Some(locale.into());
        self
    }

    /// Sets the timezone.
    pub fn timezone(mut self, timezone: impl Into<String>) -> Emulation {
        self.timezone = Some(timezone.into());
        self
    }

    /// Sets the position, accurate to 10 metres.
    pub fn geolocation(mut self, latitude: f64, longitude: f64) -> Emulation {
        self.geolocation = Some(Geolocation {
            latitude,
            longitude,
            accuracy: 10.0,
        });
        self
    }

    /// Adds a header to every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Emulation {
        self.extra_headers.insert(name.into(), value.into());
        self
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Emulation::default()
    }

    /// Checks every setting; the error names the field under `prefix`
    /// (`lease.emulation` or `browser.emulation`) and the value.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let bad =
            |field: &str, problem: String| Err(Error::config(format!("{prefix}.{field}"), problem));
        if let Some(ua) = &self.user_agent {
            if ua.is_empty() || ua.contains(['\r', '\n']) {
                return bad("user_agent", format!("{ua:?} is empty or has a line break"));
            }
        }
        if let Some(v) = &self.viewport {
            if !(1..=MAX_SIDE).contains(&v.width) || !(1..=MAX_SIDE).contains(&v.height) {
                return bad(
                    "viewport",
                    format!(
                        "{}x{} is outside 1 to {MAX_SIDE} pixels a side",
                        v.width, v.height
                    ),
                );
            }
            if !(v.device_scale_factor > 0.0 && v.device_scale_factor <= 10.0) {
                return bad(
                    "viewport.device_scale_factor",
                    format!("{} is not above 0 and at most 10", v.device_scale_factor),
                );
            }
        }
        if let Some(locale) = &self.locale {
            let tag = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if locale.is_empty() || !locale.chars().all(tag) {
                return bad(
                    "locale",
                    format!("{locale:?} is not a locale tag such as \"fr-CA\""),
                );
            }
        }
        if let Some(tz) = &self.timezone {
            if tz.is_empty() || tz.contains(char::is_whitespace) {
                return bad(
                    "timezone",
                    format!("{tz:?} is not a timezone name such as \"Europe/Paris\""),
                );
            }
        }
        if let Some(g) = &self.geolocation {
            let fine = (-90.0..=90.0).contains(&g.latitude)
                && (-180.0..=180.0).contains(&g.longitude)
                && g.accuracy >= 0.0
                && g.accuracy.is_finite();
            if !fine {
                return bad(
                    "geolocation",
                    format!(
                        "latitude {}, longitude {}, accuracy {} m: latitude must be -90 to 90, \
                         longitude -180 to 180, accuracy 0 or more",
                        g.latitude, g.longitude, g.accuracy
                    ),
                );
            }
        }
        for (name, value) in &self.extra_headers {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token) {
                return bad("extra_headers", format!("{name:?} is not a header name"));
            }
            if value.contains(['\r', '\n', '\0']) {
                return bad(
                    "extra_headers",
                    format!("the value of {name:?} has a line break or NUL in it"),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_setting_is_named_with_its_value() {
        let cases = [
            (Emulation::new().user_agent(""), "user_agent"),
            (Emulation::new().viewport(Viewport::new(0, 10)), "viewport"),
            (
                Emulation::new().viewport(Viewport::new(10, 10).device_scale_factor(f64::NAN)),
                "viewport.device_scale_factor",
            ),
            (Emulation::new().locale("fr CA"), "locale"),
            (Emulation::new().timezone("Europe/ Paris"), "timezone"),
            (Emulation::new().geolocation(0.0, 181.0), "geolocation"),
            (Emulation::new().header("X Bad", "1"), "extra_headers"),
            (Emulation::new().header("X-Ok", "a\r\nb"), "extra_headers"),
        ];
        for (emulation, field) in cases {
            let e = emulation
                .validate("browser.emulation")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("browser.emulation.{field}")),
                "{field}: {e}"
            );
        }
        assert!(Emulation::new().is_empty());
        assert!(Emulation::new().validate("x").is_ok());
    }
}
