//! The run's plots, as PNG files drawn with plotters: latency of every operation, latency
//! quantiles, throughput, and replication lag. Faults are shaded grey.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use checker::history::OpType;
use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::register_font;

use super::lag::Sighting;
use super::series::{Period, Sample, quantile};

/// Where a TrueType font for the plots' text is looked for, first `HARNESS_FONT`.
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers the font plotters draws text with, once per process.
fn font() -> anyhow::Result<()> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<String> = std::env::var("HARNESS_FONT")
            .into_iter()
            .chain(FONTS.iter().map(|f| f.to_string()))
            .collect();
        let (path, bytes) = candidates
            .iter()
            .find_map(|p| std::fs::read(p).ok().map(|b| (p, b)))
            .ok_or_else(|| {
                format!(
                    "plots need a TrueType font: install fonts-dejavu-core, or set HARNESS_FONT \
                     to a .ttf file (looked for {})",
                    candidates.join(", ")
                )
            })?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{path} is not a TrueType font plotters can use"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

const SIZE: (u32, u32) = (1100, 560);

/// Jepsen's colours: ok blue, info orange, fail pink.
fn colour(kind: OpType) -> RGBColor {
    match kind {
        OpType::Ok => RGBColor(0x1f, 0x77, 0xd4),
        OpType::Info => RGBColor(0xff, 0xa4, 0x00),
        _ => RGBColor(0xe8, 0x1e, 0x63),
    }
}

const KINDS: [OpType; 3] = [OpType::Ok, OpType::Info, OpType::Fail];

/// The latency axis: logarithmic, from below the fastest to above the slowest operation.
fn latency_range(samples: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = samples.fold((f64::MAX, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    if low > high {
        return 0.01..1.0;
    }
    (low.max(0.001) / 2.0)..(high * 2.0).max(low * 4.0)
}

fn end_time(samples: &[Sample], periods: &[Period]) -> f64 {
    samples
        .iter()
        .map(|s| s.time)
        .chain(periods.iter().map(|p| p.end))
        .fold(1.0, f64::max)
}

fn canvas(path: &Path) -> anyhow::Result<DrawingArea<BitMapBackend<'_>, Shift>> {
    font()?;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// A chart over time (seconds) and `Y`.
type Chart<'a, 'b, Y> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// A chart of time (seconds, to `end`) against a logarithmic `y` range, its mesh drawn and the
/// faults shaded.
fn log_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    caption: &str,
    end: f64,
    y: &std::ops::Range<f64>,
    (x_desc, y_desc): (&str, &str),
    periods: &[Period],
) -> anyhow::Result<Chart<'a, 'b, LogCoord<f64>>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, y.clone().log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    shade(&mut chart, periods, y)?;
    Ok(chart)
}

/// Shades each fault's period across the whole (logarithmic) y range.
fn shade(
    chart: &mut Chart<'_, '_, LogCoord<f64>>,
    periods: &[Period],
    y: &std::ops::Range<f64>,
) -> anyhow::Result<()> {
    chart.draw_series(periods.iter().map(|p| {
        Rectangle::new(
            [(p.start, y.start), (p.end, y.end)],
            BLACK.mix(0.08).filled(),
        )
    }))?;
    Ok(())
}

/// `latency-raw.png`: every completed operation's latency at its invocation time.
pub fn latency_raw(path: &Path, samples: &[Sample], periods: &[Period]) -> anyhow::Result<()> {
    let root = canvas(path)?;
    let y = latency_range(samples.iter().map(|s| s.latency_ms));
    let mut chart = log_chart(
        &root,
        "latency of every operation",
        end_time(samples, periods),
        &y,
        ("time (s)", "latency (ms)"),
        periods,
    )?;
    for kind in KINDS {
        let c = colour(kind);
        chart
            .draw_series(
                samples
                    .iter()
                    .filter(|s| s.kind == kind)
                    .map(|s| Circle::new((s.time, s.latency_ms), 2, c.filled())),
            )?
            .label(kind.name())
            .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
    }
    legend(&mut chart)?;
    root.present().context("writing latency-raw.png")?;
    Ok(())
}

fn legend<'a, 'b: 'a, Y: Ranged>(chart: &mut Chart<'a, 'b, Y>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Operations grouped in windows of time: (window start, samples), windows of at least a
/// second, at most about a hundred of them.
fn windows(samples: &[Sample], end: f64) -> (f64, Vec<Vec<Sample>>) {
    let width = (end / 100.0).max(1.0);
    let mut buckets: Vec<Vec<Sample>> = vec![Vec::new(); (end / width).ceil() as usize + 1];
    for s in samples {
        let last = buckets.len() - 1;
        buckets[((s.time / width) as usize).min(last)].push(*s);
    }
    (width, buckets)
}

/// `latency-quantiles.png`: the median, 95th, 99th percentile and maximum latency of ok
/// operations, per window of time.
pub fn latency_quantiles(
    path: &Path,
    samples: &[Sample],
    periods: &[Period],
) -> anyhow::Result<()> {
    let root = canvas(path)?;
    let end = end_time(samples, periods);
    let ok: Vec<Sample> = samples
        .iter()
        .filter(|s| s.kind == OpType::Ok)
        .copied()
        .collect();
    let y = latency_range(ok.iter().map(|s| s.latency_ms));
    let (width, buckets) = windows(&ok, end);
    let mut chart = log_chart(
        &root,
        &format!("latency quantiles of ok operations, per {width:.1} s"),
        end,
        &y,
        ("time (s)", "latency (ms)"),
        periods,
    )?;
    for (i, (q, name)) in [(0.5, "0.5"), (0.95, "0.95"), (0.99, "0.99"), (1.0, "max")]
        .into_iter()
        .enumerate()
    {
        let points: Vec<(f64, f64)> = buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(n, b)| {
                let mut l: Vec<f64> = b.iter().map(|s| s.latency_ms).collect();
                l.sort_by(f64::total_cmp);
                ((n as f64 + 0.5) * width, quantile(&l, q))
            })
            .collect();
        let c = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    legend(&mut chart)?;
    root.present().context("writing latency-quantiles.png")?;
    Ok(())
}

/// `rate.png`: completions per second, by how they completed, per window of time.
pub fn rate(path: &Path, samples: &[Sample], periods: &[Period]) -> anyhow::Result<()> {
    let root = canvas(path)?;
    let end = end_time(samples, periods);
    let (width, buckets) = windows(samples, end);
    let rates = |kind: OpType| -> Vec<(f64, f64)> {
        buckets
            .iter()
            .enumerate()
            .map(|(n, b)| {
                let count = b.iter().filter(|s| s.kind == kind).count();
                ((n as f64 + 0.5) * width, count as f64 / width)
            })
            .collect()
    };
    let top = KINDS
        .iter()
        .flat_map(|&k| rates(k))
        .map(|(_, r)| r)
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("throughput, per {width:.1} s"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("operations / s")
        .draw()?;
    chart.draw_series(
        periods
            .iter()
            .map(|p| Rectangle::new([(p.start, 0.0), (p.end, top)], BLACK.mix(0.08).filled())),
    )?;
    for kind in KINDS {
        let c = colour(kind);
        chart
            .draw_series(LineSeries::new(rates(kind), c.stroke_width(2)))?
            .label(kind.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    legend(&mut chart)?;
    root.present().context("writing rate.png")?;
    Ok(())
}

/// `replication-lag.png`: for each write, the time from its acknowledgement to its first sight
/// on each other participant, at the time of the acknowledgement.
pub fn replication_lag(
    path: &Path,
    sightings: &[Sighting],
    observers: &[String],
    periods: &[Period],
) -> anyhow::Result<()> {
    let root = canvas(path)?;
    let end = sightings
        .iter()
        .map(|s| s.acked)
        .chain(periods.iter().map(|p| p.end))
        .fold(1.0, f64::max);
    let y = latency_range(sightings.iter().map(|s| s.lag_ms));
    let mut chart = log_chart(
        &root,
        "replication lag: acknowledgement to first sight elsewhere",
        end,
        &y,
        ("time of acknowledgement (s)", "lag (ms)"),
        periods,
    )?;
    for (i, observer) in observers.iter().enumerate() {
        let c = Palette99::pick(i).to_rgba();
        chart
            .draw_series(
                sightings
                    .iter()
                    .filter(|s| s.observer == i)
                    .map(|s| Circle::new((s.acked, s.lag_ms.max(y.start)), 2, c.filled())),
            )?
            .label(observer.as_str())
            .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
    }
    legend(&mut chart)?;
    root.present().context("writing replication-lag.png")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_replication_lag_per_observer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replication-lag.png");
        let sightings: Vec<Sighting> = (0..200)
            .map(|i| Sighting {
                observer: i % 2,
                acked: i as f64 / 10.0,
                lag_ms: 1.0 + i as f64,
            })
            .collect();
        let periods = [Period {
            start: 5.0,
            end: 8.0,
            label: "kill n1".into(),
        }];
        replication_lag(
            &path,
            &sightings,
            &["n1".into(), "postgres".into()],
            &periods,
        )
        .unwrap();
        let info = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()))
            .read_info()
            .unwrap();
        assert_eq!((info.info().width, info.info().height), SIZE);
    }
}
