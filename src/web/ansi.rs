//! Log text to HTML: every character escaped, ANSI SGR colours and styles
//! turned into `<span class>` (classes only, so the page's CSP needs no
//! inline styles), other escape sequences dropped, and a carriage return
//! keeping what a terminal would show (the text after it).

/// SGR state carried from one line to the next, as a terminal carries it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ansi {
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Ansi {
    /// Appends `line` (without its newline) to `out` as HTML.
    pub fn line(&mut self, line: &str, out: &mut String) {
        let line = match line.rfind('\r') {
            // "50%\r100%": a terminal shows the last; a trailing \r of a
            // CRLF line ends nothing.
            Some(i) if i + 1 < line.len() => &line[i + 1..],
            Some(i) => line[..i].rsplit('\r').next().unwrap_or(""),
            None => line,
        };
        let mut open = self.open(out);
        let mut chars = line.char_indices().peekable();
        while let Some((_, c)) = chars.next() {
            match c {
                '\u{1b}' => {
                    match chars.peek().map(|&(_, c)| c) {
                        Some('[') => {
                            chars.next();
                            let mut params = String::new();
                            let mut end = None;
                            for (_, c) in chars.by_ref() {
                                if ('\u{40}'..='\u{7e}').contains(&c) {
                                    end = Some(c);
                                    break;
                                }
                                params.push(c);
                            }
                            if end == Some('m') {
                                if open {
                                    out.push_str("</span>");
                                }
                                self.sgr(&params);
                                open = self.open(out);
                            }
                        }
                        Some(']') => {
                            // OSC: up to BEL or ST.
                            chars.next();
                            while let Some((_, c)) = chars.next() {
                                if c == '\u{7}' {
                                    break;
                                }
                                if c == '\u{1b}' {
                                    chars.next();
                                    break;
                                }
                            }
                        }
                        Some(_) => {
                            chars.next();
                        }
                        None => {}
                    }
                }
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                '\t' => out.push('\t'),
                c if c.is_control() => {}
                c => out.push(c),
            }
        }
        if open {
            out.push_str("</span>");
        }
    }

    /// Opens a span for the current state, if it is not the default.
    fn open(&self, out: &mut String) -> bool {
        if *self == Ansi::default() {
            return false;
        }
        out.push_str("<span class=\"");
        let mut first = true;
        let mut class = |c: &str| {
            if !first {
                out.push(' ');
            }
            first = false;
            out.push_str(c);
        };
        if let Some(n) = self.fg {
            class(&format!("f{n}"));
        }
        if let Some(n) = self.bg {
            class(&format!("g{n}"));
        }
        if self.bold {
            class("b");
        }
        if self.dim {
            class("d");
        }
        if self.italic {
            class("i");
        }
        if self.underline {
            class("u");
        }
        out.push_str("\">");
        true
    }

    fn sgr(&mut self, params: &str) {
        let mut nums = params
            .split(';')
            .map(|p| p.parse::<u16>().unwrap_or(0))
            .peekable();
        if params.is_empty() {
            *self = Ansi::default();
            return;
        }
        while let Some(n) = nums.next() {
            match n {
                0 => *self = Ansi::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((n - 30) as u8),
                90..=97 => self.fg = Some((n - 90 + 8) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((n - 40) as u8),
                100..=107 => self.bg = Some((n - 100 + 8) as u8),
                49 => self.bg = None,
                38 | 48 => {
                    // 256 colours: the first 16 map to the palette; others
                    // and true colour are left at the default colour.
                    let colour = match nums.next() {
                        Some(5) => nums.next().filter(|c| *c < 16).map(|c| c as u8),
                        Some(2) => {
                            nums.next();
                            nums.next();
                            nums.next();
                            None
                        }
                        _ => None,
                    };
                    if n == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(lines: &[&str]) -> Vec<String> {
        let mut a = Ansi::default();
        lines
            .iter()
            .map(|l| {
                let mut out = String::new();
                a.line(l, &mut out);
                out
            })
            .collect()
    }

    #[test]
    fn escapes_and_colours() {
        assert_eq!(
            html(&["<script>alert('x')</script> & \"q\""]),
            ["&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"]
        );
        assert_eq!(
            html(&["\u{1b}[1;31merror\u{1b}[0m: no", "plain"]),
            ["<span class=\"f1 b\">error</span>: no", "plain"]
        );
        // Colour carries over a line break, as in a terminal.
        assert_eq!(
            html(&["\u{1b}[32mgreen", "still\u{1b}[m"]),
            [
                "<span class=\"f2\">green</span>",
                "<span class=\"f2\">still</span>"
            ]
        );
        assert_eq!(
            html(&["10%\r50%\r100%", "crlf\r", "\u{1b}]0;title\u{7}x\u{1b}[2Ky"]),
            ["100%", "crlf", "xy"]
        );
    }
}
