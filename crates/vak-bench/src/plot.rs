//! PNG plots of results.json (plotters, bitmap backend): latency.png, requests.png and
//! memory.png, each against the number of namespaces on log-log axes, one series per
//! controller.
//!
//! Text needs a TrueType font, read at run time (nothing is bundled): `$VAK_BENCH_FONT`, else
//! DejaVu Sans where Debian and Ubuntu install it. Without one the plots are skipped with a
//! warning; results.md and results.json do not depend on them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::results::{Results, Run};

/// Where Debian/Ubuntu's fonts-dejavu-core puts DejaVu Sans.
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FONT_FAMILY: &str = "sans-serif";
const WIDTH: u32 = 960;
const HEIGHT: u32 = 640;

/// Registers the font once; the error says how to get one.
fn load_font() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = std::env::var_os("VAK_BENCH_FONT")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT));
            let hint = "set VAK_BENCH_FONT to a .ttf file, or install DejaVu Sans \
                        (Debian/Ubuntu: apt-get install fonts-dejavu-core)";
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("no font at {}: {e}; {hint}", path.display()))?;
            // plotters keeps fonts for the life of the program.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a usable TrueType font; {hint}", path.display()))
        })
        .clone()
}

/// One line of a plot.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    /// Thin lines with hollow markers (e.g. p99 beside p50).
    thin: bool,
    color: RGBColor,
}

/// Writes the three plots into `dir`; Ok(Some(warning)) when they were skipped for lack of a
/// font.
pub fn write_all(results: &Results, dir: &Path) -> Result<Option<String>> {
    if let Err(warning) = load_font() {
        return Ok(Some(format!("PNG plots skipped: {warning}")));
    }
    let controllers = controller_names(results);
    let color = |i: usize| {
        let c = Palette99::pick(i).to_rgba();
        RGBColor(c.0, c.1, c.2)
    };
    let mut latency = Vec::new();
    let mut requests = Vec::new();
    let mut memory = Vec::new();
    for (i, name) in controllers.iter().enumerate() {
        let runs: Vec<&Run> = results
            .runs
            .iter()
            .filter(|r| &r.controller == name)
            .collect();
        let points = |f: &dyn Fn(&Run) -> Option<f64>| -> Vec<(f64, f64)> {
            let mut p: Vec<(f64, f64)> = runs
                .iter()
                .filter_map(|r| Some((r.size.namespaces as f64, f(r)?)))
                .filter(|(_, y)| *y > 0.0)
                .collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            p
        };
        let series = |label: String, points, thin| Series {
            label,
            points,
            thin,
            color: color(i),
        };
        latency.push(series(
            format!("{name} p50"),
            points(&|r| Some(r.edits.as_ref()?.latency.p50_ms)),
            false,
        ));
        latency.push(series(
            format!("{name} p99"),
            points(&|r| Some(r.edits.as_ref()?.latency.p99_ms)),
            true,
        ));
        requests.push(series(
            format!("{name} per edit"),
            points(&|r| {
                let p = &r.edits.as_ref()?.per_change;
                Some(p.kubernetes_total() + p.vault_total())
            }),
            true,
        ));
        requests.push(series(
            format!("{name} cold start"),
            points(&|r| {
                let c = &r.cold_start.as_ref()?.requests;
                Some(c.kubernetes_total() + c.vault_total())
            }),
            false,
        ));
        memory.push(series(
            format!("{name} peak RSS"),
            points(&|r| {
                let bytes = r
                    .peak_rss_bytes
                    .or_else(|| Some(r.cold_start.as_ref()?.peak_rss_bytes))?;
                Some(bytes as f64 / (1024.0 * 1024.0))
            }),
            false,
        ));
    }
    draw(
        &dir.join("latency.png"),
        "Edit latency (Vault shows the edit)",
        "milliseconds",
        &latency,
    )?;
    draw(
        &dir.join("requests.png"),
        "Requests (Kubernetes + Vault): per edit, and for the cold start",
        "requests",
        &requests,
    )?;
    draw(
        &dir.join("memory.png"),
        "Peak resident memory of the controller",
        "MiB",
        &memory,
    )?;
    Ok(None)
}

/// Controllers in the order results.json lists them (runs of unknown ones after).
fn controller_names(results: &Results) -> Vec<String> {
    let mut names: Vec<String> = results.controllers.iter().map(|c| c.name.clone()).collect();
    for run in &results.runs {
        if !names.contains(&run.controller) {
            names.push(run.controller.clone());
        }
    }
    names
}

/// A log range from the decade at or below the smallest value to the decade above the
/// largest, so every axis has labelled ticks, even for a single value.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().floor() + 1.0);
    (lo, hi)
}

fn draw(path: &Path, title: &str, y_label: &str, series: &[Series]) -> Result<()> {
    let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    let err = |e: &dyn std::fmt::Display| anyhow!("draw {}: {e}", path.display());
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let all = || series.iter().flat_map(|s| s.points.iter());
        let (x0, x1) = log_range(all().map(|p| p.0));
        let (y0, y1) = log_range(all().map(|p| p.1));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_FAMILY, 22))
            .margin(16)
            // Room for the last x label, which is centred on the right edge (it was cut to
            // "10000" for 100000).
            .margin_right(48)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("namespaces")
            .y_desc(y_label)
            .x_label_formatter(&|v| crate::report::num(*v))
            .y_label_formatter(&|v| crate::report::num(*v))
            .label_style((FONT_FAMILY, 14))
            .draw()
            .map_err(|e| err(&e))?;
        for s in series.iter().filter(|s| !s.points.is_empty()) {
            let color = s.color;
            let line = if s.thin {
                color.stroke_width(1)
            } else {
                color.stroke_width(3)
            };
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), line))
                .map_err(|e| err(&e))?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], line));
            let marker = if s.thin {
                color.stroke_width(2)
            } else {
                color.filled()
            };
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 5, marker)))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT_FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::write(path, crate::png::encode_rgb(WIDTH, HEIGHT, &buffer))
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ranges_always_have_width() {
        assert_eq!(log_range([30.0].into_iter()), (10.0, 100.0));
        assert_eq!(log_range([0.0, -1.0].into_iter()), (1.0, 10.0));
        assert_eq!(log_range([100.0, 10000.0].into_iter()), (100.0, 100000.0));
        assert_eq!(log_range([0.5, 7.0].into_iter()), (0.1, 10.0));
    }

    #[test]
    fn renders_pngs_when_a_font_exists() {
        let dir = tempfile::tempdir().unwrap();
        let results = crate::report::tests::sample();
        match write_all(&results, dir.path()).unwrap() {
            Some(warning) => assert!(warning.contains("VAK_BENCH_FONT"), "{warning}"),
            None => {
                for name in ["latency.png", "requests.png", "memory.png"] {
                    let bytes = std::fs::read(dir.path().join(name)).unwrap();
                    assert!(bytes.starts_with(b"\x89PNG"), "{name}");
                }
            }
        }
    }
}
