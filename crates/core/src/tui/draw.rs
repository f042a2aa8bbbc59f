//! Draws a [`View`] on a ratatui frame: header, rates with their
//! sparklines, RCODE mix, open alerts, the three top tables and the keys.
//! Read-only: it only looks at the view. Texts are escaped already
//! (`model`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table};

use super::model::{AlertSort, HISTORY_SECS, Phase, TopSort, View};
use crate::detect::Severity;
use crate::reports::Table as TopTable;
use crate::time::{MICROS, rfc3339};

/// Draw the whole screen; `title` names the command and its input.
pub fn draw(f: &mut Frame, v: &View, title: &str) {
    let [head, rates, sparks, middle, tops, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(5),
        Constraint::Min(6),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(header(v, title), head);
    f.render_widget(rates_line(v), rates);
    let [p, q] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(sparks);
    spark(f, p, "packets/s", &v.pps);
    spark(f, q, "queries/s", &v.qps);
    let [rc, al] = Layout::horizontal([Constraint::Length(22), Constraint::Min(30)]).areas(middle);
    rcodes(f, rc, v);
    alerts(f, al, v);
    let cols = Layout::horizontal([Constraint::Ratio(1, 3); 3]).areas::<3>(tops);
    for (area, (t, title)) in cols.into_iter().zip([
        (TopTable::Clients, "top clients"),
        (TopTable::Domains, "top registered domains"),
        (TopTable::Qnames, "top query names"),
    ]) {
        top_table(f, area, v, t, title);
    }
    f.render_widget(
        Paragraph::new(
            " q quit · p pause · s sort tables (count/name) · a sort alerts (severity/age)",
        )
        .style(Style::new().add_modifier(Modifier::DIM)),
        keys,
    );
}

fn header<'a>(v: &View, title: &'a str) -> Paragraph<'a> {
    let phase = match (v.phase, v.paused) {
        (_, true) => Span::styled(" PAUSED ", Style::new().fg(Color::Black).bg(Color::Yellow)),
        (Phase::Running, _) => {
            Span::styled(" LIVE ", Style::new().fg(Color::Black).bg(Color::Green))
        }
        (Phase::Stopping, _) => Span::styled(
            " STOPPING ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ),
        (Phase::Ended, _) => Span::styled(
            " INPUT ENDED: q to quit ",
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ),
    };
    let wm = if v.now.watermark_secs > 0.0 {
        rfc3339((v.now.watermark_secs * MICROS as f64) as i64)
    } else {
        "-".into()
    };
    Paragraph::new(Line::from(vec![
        Span::styled(" dnsmonitor ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(title),
        Span::raw("  "),
        phase,
        Span::raw(format!("  windows closed up to {wm}")),
    ]))
}

fn rates_line(v: &View) -> Paragraph<'static> {
    let (pps, qps) = v.rates();
    let n = &v.now;
    Paragraph::new(format!(
        " packets/s {pps}  queries/s {qps}  │ packets {}  queries {}  responses {}  │ late messages {}  capture drops {}  │ alert states {}",
        n.packets, n.queries, n.responses, n.late, n.capture_drops, v.alert_states
    ))
}

/// `history` squeezed into `width` columns (mean per column), newest right.
fn fit(history: &std::collections::VecDeque<u64>, width: usize) -> Vec<u64> {
    if width == 0 || history.is_empty() {
        return Vec::new();
    }
    let per = history.len().div_ceil(width).max(1);
    let h: Vec<u64> = history.iter().copied().collect();
    // Align buckets on the newest sample.
    let skip = h.len() % per;
    let mut out: Vec<u64> = Vec::with_capacity(width);
    if skip > 0 {
        out.push(h[..skip].iter().sum::<u64>() / skip as u64);
    }
    out.extend(
        h[skip..]
            .chunks(per)
            .map(|c| c.iter().sum::<u64>() / c.len() as u64),
    );
    out
}

fn spark(f: &mut Frame, area: Rect, what: &str, history: &std::collections::VecDeque<u64>) {
    let inner = area.width.saturating_sub(2) as usize;
    let data = fit(history, inner);
    let max = history.iter().copied().max().unwrap_or(0);
    let title = format!(" {what}: last {} min, peak {max} ", HISTORY_SECS / 60);
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(title))
            .data(&data)
            .style(Style::new().fg(Color::Cyan)),
        area,
    );
}

fn rcodes(f: &mut Frame, area: Rect, v: &View) {
    let rows: Vec<Row> = v
        .rcode_mix()
        .into_iter()
        .map(|(name, pct)| {
            let style = match name {
                "noerror" => Style::new(),
                _ => Style::new().fg(Color::Yellow),
            };
            Row::new(vec![name.to_string(), format!("{pct:5.1}%")]).style(style)
        })
        .collect();
    f.render_widget(
        Table::new(rows, [Constraint::Length(9), Constraint::Length(7)])
            .block(Block::default().borders(Borders::ALL).title(" rcode mix ")),
        area,
    );
}

fn age(secs: i64) -> String {
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

fn alerts(f: &mut Frame, area: Rect, v: &View) {
    let open = v.open_alerts();
    let rows: Vec<Row> = open
        .iter()
        .map(|a| {
            let (sev, style) = match a.severity {
                Severity::Critical => (
                    "CRITICAL",
                    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                ),
                Severity::Warning => ("WARNING", Style::new().fg(Color::Yellow)),
                Severity::Info => ("INFO", Style::new().fg(Color::Cyan)),
            };
            Row::new(vec![
                sev.to_string(),
                a.kind.to_string(),
                a.key.clone(),
                format!("{} {} (threshold {})", a.observed, a.unit, a.threshold),
                age(v.age_secs(a)),
            ])
            .style(style)
        })
        .collect();
    let order = match v.alert_sort {
        AlertSort::Severity => "by severity",
        AlertSort::Age => "by age",
    };
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(20),
                Constraint::Min(18),
                Constraint::Min(24),
                Constraint::Length(7),
            ],
        )
        .header(
            Row::new(vec!["severity", "kind", "key", "observed", "age"])
                .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" open alerts: {} ({order}) ", open.len())),
        ),
        area,
    );
}

fn top_table(f: &mut Frame, area: Rect, v: &View, t: TopTable, what: &str) {
    let i = TopTable::ALL.iter().position(|x| *x == t).unwrap_or(0);
    let table = &v.tops[i];
    let total = table.total.max(1);
    let rows: Vec<Row> = v
        .top(t)
        .into_iter()
        .map(|(name, n)| {
            Row::new(vec![
                name.to_string(),
                n.to_string(),
                format!("{:4.1}%", n as f64 * 100.0 / total as f64),
            ])
        })
        .collect();
    let order = match v.top_sort {
        TopSort::Count => "",
        TopSort::Name => ", by name",
    };
    let title = if table.end.is_empty() {
        format!(" {what} (no report yet) ")
    } else {
        format!(" {what} to {}{order} ", table.end)
    };
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Min(12),
                Constraint::Length(8),
                Constraint::Length(6),
            ],
        )
        .block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Alert, State};
    use crate::detect::{Key, Kind};
    use crate::tui::model::Sample;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(v: &View) -> String {
        let mut t = Terminal::new(TestBackend::new(160, 40)).unwrap();
        t.draw(|f| draw(f, v, "replay x.pcap")).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn fit_squeezes_history_into_the_width() {
        let h: std::collections::VecDeque<u64> = (1..=10).collect();
        assert_eq!(fit(&h, 20), (1..=10).collect::<Vec<_>>());
        assert_eq!(fit(&h, 5), [1, 3, 5, 7, 9]);
        assert_eq!(fit(&h, 4), [1, 3, 6, 9]);
        assert!(fit(&h, 0).is_empty());
    }

    #[test]
    fn the_screen_shows_rates_alerts_and_tables_escaped() {
        let mut v = View::default();
        let mut s = Sample {
            packets: 1200,
            queries: 600,
            responses: 600,
            late: 3,
            watermark_secs: 1_795_629_700.0,
            ..Sample::default()
        };
        s.rcodes[0] = 540;
        s.rcodes[3] = 60;
        v.tick(s, 1.0);
        v.alert(&Alert {
            kind: Kind::ClientFlood,
            severity: crate::detect::Severity::Critical,
            state: State::Raised,
            key: Key::Client([127, 0, 0, 66].into()),
            event_time_us: 1_795_629_690 * MICROS,
            window_start_us: 1_795_629_680 * MICROS,
            observed: 316.2,
            threshold: 300.0,
            unit: "queries/s".into(),
            evidence: Default::default(),
        });
        v.report(&crate::tui::model::tests::top_report(
            TopTable::Qnames,
            1_795_629_670,
            10,
            &[("\u{1b}]0;pwned\u{7}.example", 9)],
        ));
        let text = screen(&v);
        assert!(text.contains("packets/s 1200"), "{text}");
        assert!(text.contains("queries/s 600"), "{text}");
        assert!(text.contains("late messages 3"), "{text}");
        assert!(text.contains("noerror"), "{text}");
        assert!(text.contains("90.0%"), "{text}");
        assert!(text.contains("nxdomain"), "{text}");
        assert!(text.contains("CRITICAL"), "{text}");
        assert!(text.contains("client=127.0.0.66"), "{text}");
        assert!(text.contains("10s"), "age: {text}");
        assert!(text.contains("\\u{1b}]0;pwned\\u{7}.example"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("top clients (no report yet)"), "{text}");
    }
}
