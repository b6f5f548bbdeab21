//! Weather and traffic at a place and hour, for the delivery history: behind traits, each with
//! a file adapter (historical series an operator brings) and an HTTP adapter (a live provider:
//! weather in Open-Meteo's JSON, traffic as `{"traffic_index": …}`). A source that fails or is
//! slow leaves the values unknown — never an error for anyone.

use std::{path::Path, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};
use http_body_util::{BodyExt, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use oms_eta_model::{features::local_hour_of_week_at, history::Weather};
use serde::Deserialize;

/// Weather at a point and hour.
#[async_trait]
pub trait WeatherSource: Send + Sync + 'static {
    /// The weather at `point` (lat, lng) in the hour of `at`.
    async fn weather(&self, point: (f64, f64), at: DateTime<Utc>) -> Result<Weather, String>;
}

/// Road congestion at a point and hour (1 = free flow).
#[async_trait]
pub trait TrafficSource: Send + Sync + 'static {
    /// The traffic index around `point` in the hour of `at`.
    async fn traffic_index(&self, point: (f64, f64), at: DateTime<Utc>) -> Result<f64, String>;
}

/// Farthest a file's grid cell or region may be from the point asked about, degrees.
const NEAREST_WITHIN_DEG: f64 = 0.5;

fn squared_distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)
}

fn hour_key(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

#[derive(Debug, Deserialize)]
struct WeatherRow {
    time: String,
    lat: f64,
    lng: f64,
    precip_mm: Option<f64>,
    snow_cm: Option<f64>,
    temp_c: Option<f64>,
    wind_kmh: Option<f64>,
    visibility_km: Option<f64>,
}

/// Hourly weather per grid cell from a CSV file: `time` (RFC 3339, the hour), `lat`, `lng`,
/// `precip_mm`, `snow_cm`, `temp_c`, `wind_kmh`, `visibility_km` (empty: unknown).
pub struct FileWeather {
    /// (hour, cell, weather), sorted by hour.
    cells: Vec<(i64, (f64, f64), Weather)>,
}

impl FileWeather {
    /// Reads the series.
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| format!("weather file {}: {e}", path.display()))?;
        let mut cells = Vec::new();
        for (i, row) in reader.deserialize::<WeatherRow>().enumerate() {
            let row = row.map_err(|e| format!("weather file line {}: {e}", i + 2))?;
            let at = DateTime::parse_from_rfc3339(&row.time)
                .map_err(|e| format!("weather file line {}: time: {e}", i + 2))?;
            cells.push((
                hour_key(at.to_utc()),
                (row.lat, row.lng),
                Weather {
                    precip_mm: row.precip_mm,
                    snow_cm: row.snow_cm,
                    temp_c: row.temp_c,
                    wind_kmh: row.wind_kmh,
                    visibility_km: row.visibility_km,
                },
            ));
        }
        cells.sort_by_key(|c| c.0);
        Ok(Self { cells })
    }
}

#[async_trait]
impl WeatherSource for FileWeather {
    async fn weather(&self, point: (f64, f64), at: DateTime<Utc>) -> Result<Weather, String> {
        let hour = hour_key(at);
        let from = self.cells.partition_point(|c| c.0 < hour);
        self.cells[from..]
            .iter()
            .take_while(|c| c.0 == hour)
            .filter(|c| squared_distance(c.1, point) <= NEAREST_WITHIN_DEG.powi(2))
            .min_by(|a, b| squared_distance(a.1, point).total_cmp(&squared_distance(b.1, point)))
            .map(|c| c.2)
            .ok_or_else(|| "no weather for that place and hour".into())
    }
}

#[derive(Debug, Deserialize)]
struct TrafficRow {
    lat: f64,
    lng: f64,
    hour_of_week: u32,
    traffic_index: f64,
}

/// A traffic index per region and hour of the week from a CSV file: `lat`, `lng` (the
/// region's center), `hour_of_week` (0 = Monday 00:00, local), `traffic_index`.
pub struct FileTraffic {
    regions: Vec<((f64, f64), [f64; 168])>,
}

impl FileTraffic {
    /// Reads the table; hours a region does not list are free flow (1).
    pub fn open(path: &Path) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| format!("traffic file {}: {e}", path.display()))?;
        let mut regions: Vec<((f64, f64), [f64; 168])> = Vec::new();
        for (i, row) in reader.deserialize::<TrafficRow>().enumerate() {
            let row = row.map_err(|e| format!("traffic file line {}: {e}", i + 2))?;
            if row.hour_of_week >= 168 || !row.traffic_index.is_finite() {
                return Err(format!(
                    "traffic file line {}: hour_of_week 0–167 and a finite index",
                    i + 2
                ));
            }
            let point = (row.lat, row.lng);
            let position = match regions.iter().position(|r| r.0 == point) {
                Some(position) => position,
                None => {
                    regions.push((point, [1.0; 168]));
                    regions.len() - 1
                }
            };
            regions[position].1[row.hour_of_week as usize] = row.traffic_index;
        }
        Ok(Self { regions })
    }
}

#[async_trait]
impl TrafficSource for FileTraffic {
    async fn traffic_index(&self, point: (f64, f64), at: DateTime<Utc>) -> Result<f64, String> {
        let region = self
            .regions
            .iter()
            .filter(|r| squared_distance(r.0, point) <= NEAREST_WITHIN_DEG.powi(2))
            .min_by(|a, b| squared_distance(a.0, point).total_cmp(&squared_distance(b.0, point)))
            .ok_or("no traffic region near that place")?;
        Ok(region.1[local_hour_of_week_at(point.1, at) as usize])
    }
}

/// A GET with a deadline; the body as bytes.
async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
    timeout: Duration,
) -> Result<Bytes, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let call = async {
        let response = client.get(uri).await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        Ok(response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes())
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

fn http_client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Open-Meteo's forecast/archive answer: `hourly` arrays, one value per hour.
#[derive(Debug, Deserialize)]
struct OpenMeteo {
    hourly: OpenMeteoHourly,
}

#[derive(Debug, Deserialize)]
struct OpenMeteoHourly {
    time: Vec<String>,
    #[serde(default)]
    precipitation: Vec<Option<f64>>,
    #[serde(default)]
    snowfall: Vec<Option<f64>>,
    #[serde(default)]
    temperature_2m: Vec<Option<f64>>,
    #[serde(default)]
    wind_speed_10m: Vec<Option<f64>>,
    /// Metres.
    #[serde(default)]
    visibility: Vec<Option<f64>>,
}

/// The weather of the hour `at` in an Open-Meteo answer (`timezone=GMT`, times "2025-03-04T08:00").
pub fn parse_open_meteo(body: &[u8], at: DateTime<Utc>) -> Result<Weather, String> {
    let answer: OpenMeteo =
        serde_json::from_slice(body).map_err(|e| format!("not Open-Meteo JSON: {e}"))?;
    let wanted = format!(
        "{:04}-{:02}-{:02}T{:02}:00",
        at.year(),
        at.month(),
        at.day(),
        at.hour()
    );
    let hourly = answer.hourly;
    let i = hourly
        .time
        .iter()
        .position(|t| t.starts_with(&wanted))
        .ok_or_else(|| format!("no hour {wanted} in the answer"))?;
    let value = |series: &[Option<f64>]| series.get(i).copied().flatten();
    Ok(Weather {
        precip_mm: value(&hourly.precipitation),
        snow_cm: value(&hourly.snowfall),
        temp_c: value(&hourly.temperature_2m),
        wind_kmh: value(&hourly.wind_speed_10m),
        visibility_km: value(&hourly.visibility).map(|m| m / 1000.0),
    })
}

/// A live weather provider speaking Open-Meteo's API (`--weather-url`, e.g.
/// `https://api.open-meteo.com/v1/forecast` behind a plain-HTTP egress proxy).
pub struct OpenMeteoWeather {
    url: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl OpenMeteoWeather {
    /// A provider at `url` (`http://…`).
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            url: url.trim_end_matches('?').to_owned(),
            client: http_client(),
            timeout,
        }
    }
}

#[async_trait]
impl WeatherSource for OpenMeteoWeather {
    async fn weather(&self, point: (f64, f64), at: DateTime<Utc>) -> Result<Weather, String> {
        let day = at.format("%Y-%m-%d");
        let url = format!(
            "{}?latitude={:.4}&longitude={:.4}&hourly=precipitation,snowfall,temperature_2m,wind_speed_10m,visibility&timezone=GMT&start_date={day}&end_date={day}",
            self.url, point.0, point.1
        );
        let body = get(&self.client, &url, self.timeout).await?;
        parse_open_meteo(&body, at)
    }
}

#[derive(Debug, Deserialize)]
struct TrafficAnswer {
    traffic_index: f64,
}

/// A live traffic provider (`--traffic-url`): `GET {url}?lat=…&lng=…&at=RFC3339` answers
/// `{"traffic_index": 1.3}`.
pub struct HttpTraffic {
    url: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpTraffic {
    /// A provider at `url` (`http://…`).
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            url: url.trim_end_matches('?').to_owned(),
            client: http_client(),
            timeout,
        }
    }
}

#[async_trait]
impl TrafficSource for HttpTraffic {
    async fn traffic_index(&self, point: (f64, f64), at: DateTime<Utc>) -> Result<f64, String> {
        let url = format!(
            "{}?lat={:.4}&lng={:.4}&at={}",
            self.url,
            point.0,
            point.1,
            at.format("%Y-%m-%dT%H:%M:%SZ")
        );
        let body = get(&self.client, &url, self.timeout).await?;
        let answer: TrafficAnswer =
            serde_json::from_slice(&body).map_err(|e| format!("traffic answer: {e}"))?;
        if answer.traffic_index.is_finite() && answer.traffic_index > 0.0 {
            Ok(answer.traffic_index)
        } else {
            Err(format!("traffic index {}", answer.traffic_index))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const OPEN_METEO: &str = r#"{"latitude":52.52,"longitude":13.41,"generationtime_ms":0.1,
      "utc_offset_seconds":0,"timezone":"GMT","hourly_units":{"time":"iso8601",
      "precipitation":"mm","snowfall":"cm","temperature_2m":"°C","wind_speed_10m":"km/h",
      "visibility":"m"},"hourly":{"time":["2025-01-07T07:00","2025-01-07T08:00"],
      "precipitation":[0.0,1.2],"snowfall":[0.0,0.84],"temperature_2m":[-0.4,-0.9],
      "wind_speed_10m":[11.5,14.2],"visibility":[24140.0,null]}}"#;

    #[test]
    fn an_open_meteo_answer_gives_the_hours_weather() {
        let at = Utc.with_ymd_and_hms(2025, 1, 7, 8, 25, 0).unwrap();
        let weather = parse_open_meteo(OPEN_METEO.as_bytes(), at).unwrap();
        assert_eq!(weather.precip_mm, Some(1.2));
        assert_eq!(weather.snow_cm, Some(0.84));
        assert_eq!(weather.temp_c, Some(-0.9));
        assert_eq!(weather.visibility_km, None, "null is unknown");
        let earlier = Utc.with_ymd_and_hms(2025, 1, 7, 7, 0, 0).unwrap();
        assert_eq!(
            parse_open_meteo(OPEN_METEO.as_bytes(), earlier)
                .unwrap()
                .visibility_km,
            Some(24.14)
        );
        let missing = Utc.with_ymd_and_hms(2025, 1, 8, 7, 0, 0).unwrap();
        assert!(parse_open_meteo(OPEN_METEO.as_bytes(), missing).is_err());
        assert!(parse_open_meteo(b"{}", at).is_err());
    }

    #[tokio::test]
    async fn files_answer_for_the_nearest_cell_and_region() {
        let dir = tempfile::tempdir().unwrap();
        let weather = dir.path().join("weather.csv");
        std::fs::write(
            &weather,
            "time,lat,lng,precip_mm,snow_cm,temp_c,wind_kmh,visibility_km\n\
             2025-01-07T08:00:00Z,52.50,13.50,1.2,0.8,-0.9,14,3.5\n\
             2025-01-07T08:00:00Z,48.25,11.50,0,0,2.1,6,20\n\
             2025-01-07T09:00:00Z,52.50,13.50,0,,-0.5,10,\n",
        )
        .unwrap();
        let weather = FileWeather::open(&weather).unwrap();
        let at = Utc.with_ymd_and_hms(2025, 1, 7, 8, 40, 0).unwrap();
        let berlin = weather.weather((52.52, 13.40), at).await.unwrap();
        assert_eq!(berlin.snow_cm, Some(0.8));
        let munich = weather.weather((48.14, 11.58), at).await.unwrap();
        assert_eq!(munich.temp_c, Some(2.1));
        let later = weather
            .weather((52.52, 13.40), at + chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!((later.snow_cm, later.visibility_km), (None, None));
        assert!(
            weather.weather((40.0, -3.7), at).await.is_err(),
            "Madrid: no cell"
        );

        let traffic = dir.path().join("traffic.csv");
        // Monday 08:00 local at 13.4° E is hour_of_week 8.
        std::fs::write(
            &traffic,
            "lat,lng,hour_of_week,traffic_index\n52.52,13.40,8,1.8\n52.52,13.40,9,1.6\n",
        )
        .unwrap();
        let traffic = FileTraffic::open(&traffic).unwrap();
        let monday = Utc.with_ymd_and_hms(2025, 1, 6, 7, 30, 0).unwrap();
        assert_eq!(traffic.traffic_index((52.5, 13.45), monday).await, Ok(1.8));
        let night = Utc.with_ymd_and_hms(2025, 1, 6, 1, 30, 0).unwrap();
        assert_eq!(traffic.traffic_index((52.5, 13.45), night).await, Ok(1.0));
        assert!(traffic.traffic_index((48.1, 11.6), monday).await.is_err());
    }
}
