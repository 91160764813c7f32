//! The report of `pooled_vs_naive`: the table and the SVG chart.

use super::*;

pub(super) fn rate(r: f64) -> String {
    let n = r.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn latency(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

pub(super) fn print_table(rows: &[Row]) {
    println!(
        "\n{:<20} {:<7} {:>9} {:>12} {:>10} {:>10} {:>12}",
        "protocol", "mode", "requests", "req/s", "p50", "p99", "connections"
    );
    for row in rows {
        for (mode, m) in [("naive", &row.naive), ("pooled", &row.pooled)] {
            println!(
                "{:<20} {:<7} {:>9} {:>12} {:>10} {:>10} {:>12}",
                row.proto.name(),
                mode,
                m.requests,
                rate(m.rate()),
                latency(m.quantile(0.5)),
                latency(m.quantile(0.99)),
                m.connections
            );
            if m.errors > 0 {
                println!(
                    "{:<20} {mode:<7} {} requests failed, first: {}",
                    "",
                    m.errors,
                    m.first_error.as_deref().unwrap_or("?")
                );
            }
        }
    }
    println!("\npooled / naive (throughput, and how much lower the p99):");
    for row in rows {
        let (t, p) = (row.throughput_ratio(), row.p99_ratio());
        println!(
            "  {:<20} {:>6.1}× throughput, p99 {:>5.1}× lower, {:>6} vs {} connections",
            row.proto.name(),
            t,
            p,
            row.naive.connections,
            row.pooled.connections,
        );
    }
}

/// Two panels side by side (throughput, p99), each a horizontal bar pair
/// (naive, pooled) per protocol on a log scale, protocols top to bottom
/// with their names and ratios in the left margin: the chart grows in
/// height with the rows, so no label ever meets another. Text is SVG
/// `<text>`: no font files are needed to write it.
pub(super) fn chart(rows: &[Row], tasks: u32, path: &Path) -> Result<(), BoxError> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    const NAIVE: RGBColor = RGBColor(214, 96, 77);
    const POOLED: RGBColor = RGBColor(67, 147, 195);
    const ROW_PX: u32 = 46;
    let n = rows.len();
    let height = 160 + ROW_PX * n as u32;
    let base = SVGBackend::new(path, (1400, height)).into_drawing_area();
    base.fill(&WHITE)?;
    // Title and legend on top, drawn in backend pixels on the whole area.
    let centered = Pos::new(HPos::Center, VPos::Top);
    base.draw(&Text::new(
        format!(
            "connpool: pooled vs a new connection per request ({tasks} concurrent tasks, loopback)"
        ),
        (700, 10),
        ("sans-serif", 22).into_font().color(&BLACK).pos(centered),
    ))?;
    for (i, (color, label)) in [
        (NAIVE, "naive: a new connection per request"),
        (POOLED, "pooled (connpool, default config)"),
    ]
    .into_iter()
    .enumerate()
    {
        let x = 380 + 340 * i as i32;
        base.draw(&Rectangle::new([(x, 46), (x + 14, 58)], color.filled()))?;
        base.draw(&Text::new(
            label,
            (x + 22, 52),
            ("sans-serif", 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    let panels = base.margin(70, 0, 0, 0).split_evenly((1, 2));

    /// What one panel shows.
    struct Panel {
        caption: &'static str,
        /// (naive, pooled)
        pick: fn(&Row) -> (f64, f64),
        /// A bar's value.
        fmt: fn(f64) -> String,
        /// An axis label.
        axis: fn(f64) -> String,
        ratio: fn(&Row) -> String,
    }
    let specs = [
        Panel {
            caption: "throughput, requests/s (log scale, longer is better)",
            pick: |r| (r.naive.rate(), r.pooled.rate()),
            fmt: rate,
            axis: rate,
            ratio: |r| format!("{:.1}× the throughput", r.throughput_ratio()),
        },
        Panel {
            caption: "p99 latency (log scale, shorter is better)",
            pick: |r| {
                (
                    r.naive.quantile(0.99).as_secs_f64(),
                    r.pooled.quantile(0.99).as_secs_f64(),
                )
            },
            fmt: |v| latency(Duration::from_secs_f64(v)),
            axis: |v| match v {
                v if v >= 1.0 => format!("{v} s"),
                v if v >= 1e-3 => format!("{} ms", (v * 1e3).round()),
                v => format!("{} µs", (v * 1e6).round()),
            },
            ratio: |r| format!("p99 {:.1}× lower", r.p99_ratio()),
        },
    ];
    for (panel, spec) in panels.iter().zip(specs) {
        let Panel {
            caption,
            pick,
            fmt,
            axis,
            ratio,
        } = spec;
        let values: Vec<(f64, f64)> = rows.iter().map(pick).collect();
        let all = values.iter().flat_map(|&(a, b)| [a, b]);
        let lo = all.clone().fold(f64::INFINITY, f64::min).max(1e-9);
        let hi = all.fold(0.0, f64::max).max(lo * 10.0);
        // Room on the right of the longest bar for its value.
        let (lo, hi) = (
            10f64.powf(lo.log10().floor()),
            10f64.powf((hi * 30.0).log10().ceil()),
        );
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 17))
            .margin(15)
            .x_label_area_size(30)
            .y_label_area_size(190)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .y_label_formatter(&|_| String::new())
            .x_label_formatter(&|v| axis(*v))
            .x_label_style(("sans-serif", 13))
            .draw()?;
        // Row `i` from the top: its band is [n - i - 1, n - i).
        let band = move |i: usize| (n - i - 1) as f64;
        for (which, color) in [(0, NAIVE), (1, POOLED)] {
            let bar = move |i: usize, v: f64| {
                let y = band(i) + 0.52 - 0.38 * which as f64;
                (y, v.max(lo))
            };
            let bars = values.iter().enumerate().map(move |(i, &(a, b))| {
                let (y, v) = bar(i, if which == 0 { a } else { b });
                Rectangle::new([(lo, y), (v, y + 0.34)], color.filled())
            });
            chart.draw_series(bars)?;
            let tags = values.iter().enumerate().map(move |(i, &(a, b))| {
                let v = if which == 0 { a } else { b };
                let (y, end) = bar(i, v);
                Text::new(
                    format!(" {}", fmt(v)),
                    (end, y + 0.17),
                    ("sans-serif", 12)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            });
            chart.draw_series(tags)?;
        }
        // Protocol names and ratios in the left margin, in backend pixels.
        for (i, row) in rows.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(lo, band(i) + 0.5));
            let right = Pos::new(HPos::Right, VPos::Bottom);
            base.draw(&Text::new(
                row.proto.name(),
                (x - 10, y),
                ("sans-serif", 14).into_font().color(&BLACK).pos(right),
            ))?;
            base.draw(&Text::new(
                ratio(row),
                (x - 10, y + 2),
                ("sans-serif", 13)
                    .into_font()
                    .style(FontStyle::Bold)
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Top)),
            ))?;
        }
    }
    base.present()?;
    Ok(())
}
