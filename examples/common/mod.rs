//! Helpers the example programs share: command-line flags and SVG pictures drawn with plotters.
#![allow(dead_code)] // each example uses some of these

use std::error::Error;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use tapegrad::nn::Dataset;
use tapegrad::nn::boundary::Grid;

/// The result type of the examples.
pub type Res<T = ()> = Result<T, Box<dyn Error>>;

/// The folder for pictures: `--out DIR`, default `target/tapegrad-plots/`; created if missing.
pub fn out_dir() -> Res<PathBuf> {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from("target/tapegrad-plots");
    while let Some(a) = args.next() {
        if a == "--out"
            && let Some(d) = args.next()
        {
            dir = PathBuf::from(d);
        }
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Whether `--quick` was given: small sizes, for the tests that run every example.
pub fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

pub const CLASS_COLORS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];

/// A light blend of the two class colours for a probability `p` of class 1.
fn shade(p: f64) -> RGBColor {
    let p = p.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| {
        let v = (1.0 - p) * a as f64 + p * b as f64;
        (255.0 - 0.35 * (255.0 - v)) as u8
    };
    let [a, b] = CLASS_COLORS;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Draws a decision-boundary panel: the grid's probabilities as shaded cells, the 0.5 level
/// marked dark, and the data points coloured by class.
pub fn draw_boundary<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    grid: &Grid,
    data: &Dataset<f32>,
) -> Res
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = (grid.xs[0], *grid.xs.last().expect("grid"));
    let (y0, y1) = (grid.ys[0], *grid.ys.last().expect("grid"));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(40)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x1")
        .y_desc("x2")
        .draw()?;
    let (nx, ny) = (grid.xs.len(), grid.ys.len());
    let (dx, dy) = ((x1 - x0) / (nx - 1) as f64, (y1 - y0) / (ny - 1) as f64);
    // Shaded cells, the probability quantized to 16 levels so that runs of equal shade along a
    // row merge into one rectangle (keeps the SVG small).
    let level = |p: f64| (p.clamp(0.0, 1.0) * 15.0).round() as u8;
    let mut cells = Vec::new();
    for j in 0..ny {
        let mut start = 0;
        for i in 1..=nx {
            if i == nx || level(grid.at(i, j)) != level(grid.at(start, j)) {
                let p = level(grid.at(start, j)) as f64 / 15.0;
                let (xa, xb) = (grid.xs[start] - dx / 2.0, grid.xs[i - 1] + dx / 2.0);
                let y = grid.ys[j];
                cells.push(Rectangle::new(
                    [(xa, y - dy / 2.0), (xb, y + dy / 2.0)],
                    shade(p).filled(),
                ));
                start = i;
            }
        }
    }
    chart.draw_series(cells)?;
    // The 0.5 level: a segment between every two neighbouring cells on opposite sides.
    let mut edges = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let here = grid.at(i, j) > 0.5;
            let (x, y) = (grid.xs[i], grid.ys[j]);
            if i + 1 < nx && (grid.at(i + 1, j) > 0.5) != here {
                let xm = x + dx / 2.0;
                edges.push(vec![(xm, y - dy / 2.0), (xm, y + dy / 2.0)]);
            }
            if j + 1 < ny && (grid.at(i, j + 1) > 0.5) != here {
                let ym = y + dy / 2.0;
                edges.push(vec![(x - dx / 2.0, ym), (x + dx / 2.0, ym)]);
            }
        }
    }
    chart
        .draw_series(
            edges
                .into_iter()
                .map(|e| PathElement::new(e, RGBColor(40, 40, 40).stroke_width(2))),
        )?
        .label("decision boundary (p = 0.5)")
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 18, y)],
                RGBColor(40, 40, 40).stroke_width(2),
            )
        });
    let radius = if data.len() <= 16 { 7 } else { 3 };
    draw_points(&mut chart, data, radius)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn draw_points<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    data: &Dataset<f32>,
    radius: i32,
) -> Res
where
    DB::ErrorType: 'static,
{
    let labels = data.labels().expect("a classification dataset");
    let x = data.x.as_slice();
    for (class, &color) in CLASS_COLORS.iter().enumerate() {
        chart
            .draw_series(labels.iter().enumerate().filter(|&(_, &l)| l == class).map(
                move |(i, _)| {
                    Circle::new(
                        (x[2 * i] as f64, x[2 * i + 1] as f64),
                        radius,
                        color.filled(),
                    )
                },
            ))?
            .label(format!("class {class}"))
            .legend(move |(a, b)| Circle::new((a + 8, b), 4, color.filled()));
    }
    Ok(())
}

/// Several decision-boundary panels side by side in one SVG.
pub fn boundary_panels(path: &Path, panels: &[(String, Grid)], data: &Dataset<f32>) -> Res {
    let root = SVGBackend::new(path, (430 * panels.len() as u32, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, (title, grid)) in areas.iter().zip(panels) {
        draw_boundary(area, title, grid, data)?;
    }
    root.present()?;
    Ok(())
}

/// One named line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
    pub points_only: bool,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Series {
            name: name.into(),
            points,
            color,
            dashed: false,
            points_only: false,
        }
    }
}

/// The i-th colour of a readable palette.
pub fn color(i: usize) -> RGBColor {
    const P: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    P[i % P.len()]
}

/// A line chart with axes, labels, a legend and a title.
pub fn line_chart(path: &Path, title: &str, x_desc: &str, y_desc: &str, series: &[Series]) -> Res {
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    draw_lines(&root, title, x_desc, y_desc, series)?;
    root.present()?;
    Ok(())
}

/// Draws a line chart into an area.
pub fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Res
where
    DB::ErrorType: 'static,
{
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for s in series {
        let color = s.color;
        let anno = if s.points_only {
            chart.draw_series(
                s.points
                    .iter()
                    .map(move |&p| Circle::new(p, 2, color.filled())),
            )?
        } else if s.dashed {
            chart.draw_series(DashedLineSeries::new(
                s.points.iter().copied(),
                6,
                4,
                color.stroke_width(2),
            ))?
        } else {
            chart.draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))?
        };
        anno.label(s.name.clone()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Points of a 2-D dataset in their own plane, with a line `w1 a + w2 b + c = 0` (a neuron's
/// decision boundary) across the plotted range.
pub fn points_with_line(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    data: &Dataset<f32>,
    (w1, w2, c): (f64, f64, f64),
    range: ((f64, f64), (f64, f64)),
) -> Res {
    let root = SVGBackend::new(path, (560, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let ((x0, x1), (y0, y1)) = range;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(46)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()?;
    // The line, clipped to the plotted box by sampling it densely.
    let pts: Vec<(f64, f64)> = if w2.abs() > 1e-12 {
        (0..=400)
            .map(|i| x0 + (x1 - x0) * i as f64 / 400.0)
            .map(|a| (a, -(w1 * a + c) / w2))
            .filter(|&(_, b)| b >= y0 && b <= y1)
            .collect()
    } else {
        let a = -c / w1;
        vec![(a, y0), (a, y1)]
    };
    chart
        .draw_series(LineSeries::new(pts, BLACK.stroke_width(2)))?
        .label("output neuron: w . h + b = 0")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    draw_points(&mut chart, data, 7)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
