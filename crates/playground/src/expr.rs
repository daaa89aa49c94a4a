//! The tape tab's language: an expression of named scalars or small tensors, parsed and
//! recorded on a real [`Tape`], then differentiated by it.
//!
//! ```text
//! expression  := sum
//! sum         := product (("+" | "-") product)*
//! product     := unary (("*" | "/" | "@") unary)*
//! unary       := "-" unary | power
//! power       := primary ("^" unary)?
//! primary     := number | name | name "(" expression ("," expression)* ")" | "(" expression ")"
//! ```
//!
//! Values are given separately as `name = 2`, `x = [1, 2, 3]` or `m = [[1, 2], [3, 4]]`,
//! separated by newlines, `;` or `,`. Every error names the 1-based column it points at.

use std::fmt;

use tapegrad_autodiff::{BackwardStep, Tape, TraceRow, Var};
use tapegrad_tensor::Tensor;

/// How much a request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct ExprLimits {
    /// Characters in the expression.
    pub max_expression: usize,
    /// Characters in the values text.
    pub max_values: usize,
    /// Elements in one value.
    pub max_elements: usize,
    /// Nodes on the tape (leaves and ops).
    pub max_nodes: usize,
    /// Nesting depth of parentheses, calls and unary minus.
    pub max_depth: usize,
}

impl Default for ExprLimits {
    fn default() -> Self {
        ExprLimits {
            max_expression: 400,
            max_values: 2000,
            max_elements: 64,
            max_nodes: 400,
            max_depth: 40,
        }
    }
}

/// A parse or evaluation error, pointing at a column of the text it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// Which text: `"expression"` or `"values"`.
    pub field: &'static str,
    /// The 1-based column (in characters) the error points at.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} column {}: {}", self.field, self.column, self.message)
    }
}

impl std::error::Error for ExprError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Sym(char),
    End,
}

/// A token and the 1-based column where it starts.
type Spanned = (Tok, usize);

fn tokenize(text: &str, field: &'static str) -> Result<Vec<Spanned>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |column: usize, message: String| ExprError {
        field,
        column,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() && c != '\n' {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s
                .parse()
                .map_err(|_| err(col, format!("`{s}` is not a number")))?;
            if !v.is_finite() {
                return Err(err(col, format!("`{s}` is too large")));
            }
            out.push((Tok::Num(v), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), col));
        } else if "+-*/^@(),[]=;\n".contains(c) {
            out.push((Tok::Sym(c), col));
            i += 1;
        } else {
            return Err(err(col, format!("unexpected character `{c}`")));
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

/// A parsed expression; every node keeps the column it came from.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64, usize),
    Name(String, usize),
    Neg(Box<Expr>, usize),
    Bin(char, Box<Expr>, Box<Expr>, usize),
    Call(String, Vec<Expr>, usize),
}

struct Parser<'a> {
    toks: &'a [Spanned],
    pos: usize,
    depth: usize,
    limits: ExprLimits,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn col(&self) -> usize {
        self.toks[self.pos].1
    }

    fn err(&self, message: impl Into<String>) -> ExprError {
        ExprError {
            field: "expression",
            column: self.col(),
            message: message.into(),
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.err(format!("nested more than {} deep", self.limits.max_depth)));
        }
        Ok(())
    }

    fn expect(&mut self, c: char) -> Result<(), ExprError> {
        if *self.peek() == Tok::Sym(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected `{c}`, found {}", describe(self.peek()))))
        }
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        self.left_assoc(&['+', '-'], Self::product)
    }

    fn product(&mut self) -> Result<Expr, ExprError> {
        self.left_assoc(&['*', '/', '@'], Self::unary)
    }

    /// `next (op next)*` for the operators `ops`, grouped from the left.
    fn left_assoc(
        &mut self,
        ops: &[char],
        next: fn(&mut Self) -> Result<Expr, ExprError>,
    ) -> Result<Expr, ExprError> {
        let mut lhs = next(self)?;
        while let Tok::Sym(op) = *self.peek()
            && ops.contains(&op)
        {
            let col = self.col();
            self.pos += 1;
            let rhs = next(self)?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs), col);
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if *self.peek() == Tok::Sym('-') {
            let col = self.col();
            self.pos += 1;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(inner), col));
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, ExprError> {
        let base = self.primary()?;
        if *self.peek() == Tok::Sym('^') {
            let col = self.col();
            self.pos += 1;
            self.enter()?;
            let exp = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Bin('^', Box::new(base), Box::new(exp), col));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Num(v) => {
                self.pos += 1;
                Ok(Expr::Num(v, col))
            }
            Tok::Name(name) => {
                self.pos += 1;
                if *self.peek() != Tok::Sym('(') {
                    return Ok(Expr::Name(name, col));
                }
                self.pos += 1;
                self.enter()?;
                let mut args = vec![self.sum()?];
                while *self.peek() == Tok::Sym(',') {
                    self.pos += 1;
                    args.push(self.sum()?);
                }
                self.expect(')')?;
                self.depth -= 1;
                Ok(Expr::Call(name, args, col))
            }
            Tok::Sym('(') => {
                self.pos += 1;
                self.enter()?;
                let inner = self.sum()?;
                self.expect(')')?;
                self.depth -= 1;
                Ok(inner)
            }
            other => Err(self.err(format!(
                "expected a number, a name or `(`, found {}",
                describe(&other)
            ))),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("the number {v}"),
        Tok::Name(n) => format!("`{n}`"),
        Tok::Sym('\n') => "a line break".into(),
        Tok::Sym(c) => format!("`{c}`"),
        Tok::End => "the end".into(),
    }
}

/// The functions the language knows, with their argument counts.
pub const FUNCTIONS: &[(&str, usize, &str)] = &[
    ("tanh", 1, "hyperbolic tangent"),
    ("sigmoid", 1, "logistic sigmoid 1 / (1 + e^-x)"),
    ("relu", 1, "max(x, 0)"),
    ("exp", 1, "e^x"),
    ("log", 1, "natural logarithm"),
    ("sqrt", 1, "square root"),
    ("sin", 1, "sine"),
    ("cos", 1, "cosine"),
    ("abs", 1, "absolute value"),
    ("square", 1, "x^2"),
    ("softplus", 1, "ln(1 + e^x)"),
    ("sum", 1, "sum of the elements"),
    ("mean", 1, "mean of the elements"),
    ("max", 1, "largest element"),
    ("dot", 2, "sum(a * b)"),
    ("matmul", 2, "matrix product (also a @ b)"),
    ("pow", 2, "a^b"),
];

/// Parses the values text: `name = number | [..] | [[..], ..]`, separated by newlines, `;`
/// or `,`. Returns the values in the order given.
///
/// # Errors
///
/// An [`ExprError`] for the `values` field naming the column: a malformed value, a name given
/// twice, rows of different lengths, too many elements.
pub fn parse_values(
    text: &str,
    limits: &ExprLimits,
) -> Result<Vec<(String, Tensor<f64>)>, ExprError> {
    let field = "values";
    if text.chars().count() > limits.max_values {
        return Err(ExprError {
            field,
            column: limits.max_values + 1,
            message: format!("longer than {} characters", limits.max_values),
        });
    }
    let toks = tokenize(text, field)?;
    let err = |column: usize, message: String| ExprError {
        field,
        column,
        message,
    };
    let mut pos = 0;
    let mut out: Vec<(String, Tensor<f64>)> = Vec::new();
    let number = |pos: &mut usize| -> Result<f64, ExprError> {
        let neg = toks[*pos].0 == Tok::Sym('-');
        if neg {
            *pos += 1;
        }
        match &toks[*pos] {
            (Tok::Num(v), _) => {
                *pos += 1;
                Ok(if neg { -v } else { *v })
            }
            (t, c) => Err(err(*c, format!("expected a number, found {}", describe(t)))),
        }
    };
    loop {
        while matches!(toks[pos].0, Tok::Sym('\n' | ';' | ',')) {
            pos += 1;
        }
        let (name, col) = match &toks[pos] {
            (Tok::End, _) => break,
            (Tok::Name(n), c) => (n.clone(), *c),
            (t, c) => return Err(err(*c, format!("expected a name, found {}", describe(t)))),
        };
        if FUNCTIONS.iter().any(|(f, _, _)| *f == name) {
            return Err(err(
                col,
                format!("`{name}` is a function; pick another name"),
            ));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(err(col, format!("`{name}` is given twice")));
        }
        pos += 1;
        if toks[pos].0 != Tok::Sym('=') {
            return Err(err(toks[pos].1, format!("expected `=` after `{name}`")));
        }
        pos += 1;
        let value_col = toks[pos].1;
        let value = if toks[pos].0 == Tok::Sym('[') {
            pos += 1;
            let mut rows: Vec<Vec<f64>> = Vec::new();
            let nested = toks[pos].0 == Tok::Sym('[');
            loop {
                if nested {
                    if toks[pos].0 != Tok::Sym('[') {
                        return Err(err(toks[pos].1, "expected `[` starting a row".into()));
                    }
                    pos += 1;
                }
                let mut row = Vec::new();
                loop {
                    row.push(number(&mut pos)?);
                    if rows.iter().map(Vec::len).sum::<usize>() + row.len() > limits.max_elements {
                        return Err(err(
                            value_col,
                            format!("`{name}` holds more than {} elements", limits.max_elements),
                        ));
                    }
                    match toks[pos].0 {
                        Tok::Sym(',') => pos += 1,
                        Tok::Sym(']') => break,
                        ref t => {
                            return Err(err(
                                toks[pos].1,
                                format!("expected `,` or `]`, found {}", describe(t)),
                            ));
                        }
                    }
                }
                pos += 1;
                if let Some(first) = rows.first()
                    && first.len() != row.len()
                {
                    return Err(err(
                        value_col,
                        format!(
                            "`{name}`: rows of {} and {} elements",
                            first.len(),
                            row.len()
                        ),
                    ));
                }
                rows.push(row);
                if !nested {
                    break;
                }
                match toks[pos].0 {
                    Tok::Sym(',') => pos += 1,
                    Tok::Sym(']') => {
                        pos += 1;
                        break;
                    }
                    ref t => {
                        return Err(err(
                            toks[pos].1,
                            format!("expected `,` or `]`, found {}", describe(t)),
                        ));
                    }
                }
            }
            let (r, c) = (rows.len(), rows[0].len());
            let flat: Vec<f64> = rows.into_iter().flatten().collect();
            let shape: Vec<usize> = if nested { vec![r, c] } else { vec![c] };
            Tensor::from_vec(flat, &shape).map_err(|e| err(value_col, e.to_string()))?
        } else {
            Tensor::scalar(number(&mut pos)?)
        };
        out.push((name, value));
    }
    Ok(out)
}

/// An expression recorded on a tape and differentiated: the data the tape tab shows.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Every node, in recording order.
    pub rows: Vec<TraceRow<f64>>,
    /// Each node's gradient from [`Tape::backward`] (`None` where no gradient flows).
    pub grads: Vec<Option<Tensor<f64>>>,
    /// The node holding the expression's value.
    pub output: usize,
    /// The backward pass one node at a time ([`Tape::backward_steps`]).
    pub steps: Vec<BackwardStep<f64>>,
    /// The graph in Graphviz DOT, with gradients.
    pub dot: String,
}

/// Parses `expression` with the values of `values`, records it on a tape and runs backward.
///
/// # Errors
///
/// An [`ExprError`] naming the field and column: a syntax error, an unknown name or function,
/// a wrong argument count, shapes that do not fit (at the operator), a result of more than one
/// element, or a limit exceeded.
pub fn record(expression: &str, values: &str, limits: &ExprLimits) -> Result<Recorded, ExprError> {
    if expression.chars().count() > limits.max_expression {
        return Err(ExprError {
            field: "expression",
            column: limits.max_expression + 1,
            message: format!("longer than {} characters", limits.max_expression),
        });
    }
    let values = parse_values(values, limits)?;
    let toks = tokenize(expression, "expression")?;
    let mut parser = Parser {
        toks: &toks,
        pos: 0,
        depth: 0,
        limits: *limits,
    };
    let ast = parser.sum()?;
    if *parser.peek() != Tok::End {
        return Err(parser.err(format!(
            "expected an operator or the end, found {}",
            describe(parser.peek())
        )));
    }
    let tape = Tape::<f64>::new();
    // A value or gradient that is not finite stops recording with an error naming the node
    // (JSON has no infinity, and the page could not show it).
    tape.set_check_finite(true);
    let mut eval = Eval {
        tape: &tape,
        values: &values,
        leaves: Vec::new(),
        limits,
        columns: Vec::new(),
    };
    let y = eval.eval(&ast)?;
    if y.shape().iter().product::<usize>() != 1 {
        return Err(ExprError {
            field: "expression",
            column: 1,
            message: format!(
                "the result has shape {:?}; backward needs one number: wrap it in sum(...) or mean(...)",
                y.shape().to_vec()
            ),
        });
    }
    let internal = |e: tapegrad_autodiff::AutodiffError| eval.convert(e, 1);
    let steps = tape.backward_steps(y).map_err(internal)?;
    let grads = tape.backward(y).map_err(internal)?;
    let rows = tape.rows();
    let by_id: Vec<Option<Tensor<f64>>> = rows
        .iter()
        .map(|r| {
            let v = tape.node(r.id).ok()?;
            (r.requires_grad && grads.reaches(v)).then(|| grads[v].clone())
        })
        .collect();
    Ok(Recorded {
        dot: tape.to_dot_with(&grads),
        rows,
        grads: by_id,
        output: y.index(),
        steps,
    })
}

struct Eval<'t, 'v> {
    tape: &'t Tape<f64>,
    values: &'v [(String, Tensor<f64>)],
    /// Leaves recorded so far by name: a name used twice is one leaf (its gradient sums).
    leaves: Vec<(String, Var<'t, f64>)>,
    limits: &'v ExprLimits,
    /// The column each node came from, by node id.
    columns: Vec<usize>,
}

impl Eval<'_, '_> {
    /// An error of the tape as the expression's error: a finite-check error points at the
    /// column of the node it names, with a short message; any other at `col`.
    fn convert(&self, e: tapegrad_autodiff::AutodiffError, col: usize) -> ExprError {
        let tapegrad_autodiff::AutodiffError::NonFinite(report) = &e else {
            return at(col, e.to_string());
        };
        let value = report.values.first().copied().unwrap_or(f64::NAN);
        let column = self.columns.get(report.id).copied().unwrap_or(col);
        let message = if report.phase == "forward" {
            format!(
                "`{}` gives {value} here: backward needs finite values",
                report.op
            )
        } else {
            format!(
                "the gradient through `{}` here is {value}: backward needs finite values",
                report.op
            )
        };
        at(column, message)
    }
}

impl<'t> Eval<'t, '_> {
    /// Records `e` and notes the column of every node it added.
    fn eval(&mut self, e: &Expr) -> Result<Var<'t, f64>, ExprError> {
        let col = column_of(e);
        let result = self.eval_node(e, col);
        let n = self.tape.len();
        if self.columns.len() < n {
            self.columns.resize(n, col);
        }
        result
    }

    /// Records `e` (at column `col`) on the tape.
    fn eval_node(&mut self, e: &Expr, col: usize) -> Result<Var<'t, f64>, ExprError> {
        if self.tape.len() >= self.limits.max_nodes {
            return Err(at(
                col,
                format!("more than {} nodes on the tape", self.limits.max_nodes),
            ));
        }
        // A fallible op's error; a finite-check error an earlier op left pending surfaces
        // here too, and points at that op.
        let fit = |this: &Self, r: tapegrad_autodiff::Result<Var<'t, f64>>| {
            r.map_err(|e| this.convert(e, col))
        };
        Ok(match e {
            Expr::Num(v, _) => self.tape.constant(Tensor::scalar(*v)),
            Expr::Name(name, _) => {
                if let Some((_, v)) = self.leaves.iter().find(|(n, _)| n == name) {
                    *v
                } else {
                    let Some((_, value)) = self.values.iter().find(|(n, _)| n == name) else {
                        let hint = if FUNCTIONS.iter().any(|(f, _, _)| f == name) {
                            format!("`{name}` is a function: write {name}(...)")
                        } else {
                            format!("unknown name `{name}`: give it a value, as `{name} = 1`")
                        };
                        return Err(at(col, hint));
                    };
                    let v = self.tape.var(value.clone()).named(name);
                    self.leaves.push((name.clone(), v));
                    v
                }
            }
            Expr::Neg(inner, _) => -self.eval(inner)?,
            Expr::Bin(op, a, b, _) => {
                // x ^ constant records one powf node; otherwise pow reads both.
                if *op == '^'
                    && let Some(p) = constant(b)
                {
                    let base = self.eval(a)?;
                    return Ok(base.powf(p));
                }
                let (x, y) = (self.eval(a)?, self.eval(b)?);
                match op {
                    '+' => fit(self, x.add(y))?,
                    '-' => fit(self, x.sub(y))?,
                    '*' => fit(self, x.mul(y))?,
                    '/' => fit(self, x.div(y))?,
                    '@' => fit(self, x.matmul(y))?,
                    _ => fit(self, x.pow(y))?,
                }
            }
            Expr::Call(name, args, _) => {
                let Some(&(_, arity, _)) = FUNCTIONS.iter().find(|(f, _, _)| f == name) else {
                    let known: Vec<&str> = FUNCTIONS.iter().map(|(f, _, _)| *f).collect();
                    return Err(at(
                        col,
                        format!("unknown function `{name}`; known: {}", known.join(", ")),
                    ));
                };
                if args.len() != arity {
                    return Err(at(
                        col,
                        format!(
                            "`{name}` takes {arity} argument{}, got {}",
                            if arity == 1 { "" } else { "s" },
                            args.len()
                        ),
                    ));
                }
                let x = self.eval(&args[0])?;
                match name.as_str() {
                    "tanh" => x.tanh(),
                    "sigmoid" => x.sigmoid(),
                    "relu" => x.relu(),
                    "exp" => x.exp(),
                    "log" => x.ln(),
                    "sqrt" => x.sqrt(),
                    "sin" => x.sin(),
                    "cos" => x.cos(),
                    "abs" => x.abs(),
                    "square" => x.square(),
                    "softplus" => x.softplus(),
                    "sum" => x.sum(),
                    "mean" => x.mean(),
                    "max" => fit(self, x.max())?,
                    _ => {
                        let y = self.eval(&args[1])?;
                        match name.as_str() {
                            "dot" => fit(self, x.mul(y))?.sum(),
                            "matmul" => fit(self, x.matmul(y))?,
                            _ => fit(self, x.pow(y))?,
                        }
                    }
                }
            }
        })
    }
}

/// The value of a literal exponent (`2`, `-1`, `(0.5)`), if it is one.
fn constant(e: &Expr) -> Option<f64> {
    match e {
        Expr::Num(v, _) => Some(*v),
        Expr::Neg(inner, _) => constant(inner).map(|v| -v),
        _ => None,
    }
}

fn column_of(e: &Expr) -> usize {
    match e {
        Expr::Num(_, c)
        | Expr::Name(_, c)
        | Expr::Neg(_, c)
        | Expr::Bin(_, _, _, c)
        | Expr::Call(_, _, c) => *c,
    }
}

fn at(column: usize, message: String) -> ExprError {
    ExprError {
        field: "expression",
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(e: &str, v: &str) -> Result<Recorded, ExprError> {
        record(e, v, &ExprLimits::default())
    }

    #[test]
    fn micrograd_example_matches_the_closed_form() {
        let r = run("tanh(a * b + a)", "a = 2, b = -3").unwrap();
        let t = (2.0f64 * -3.0 + 2.0).tanh();
        let a = r
            .rows
            .iter()
            .position(|row| row.label.as_deref() == Some("a"))
            .unwrap();
        let b = r
            .rows
            .iter()
            .position(|row| row.label.as_deref() == Some("b"))
            .unwrap();
        // a is read twice but is one leaf.
        assert_eq!(r.rows.iter().filter(|row| row.op == "leaf").count(), 2);
        assert_eq!(r.rows[r.output].value.item().unwrap(), t);
        let ga = r.grads[a].as_ref().unwrap().item().unwrap();
        let gb = r.grads[b].as_ref().unwrap().item().unwrap();
        assert!((ga - (1.0 - t * t) * (-3.0 + 1.0)).abs() < 1e-15);
        assert!((gb - (1.0 - t * t) * 2.0).abs() < 1e-15);
        assert_eq!(r.steps.len(), 3);
    }

    #[test]
    fn precedence_and_associativity() {
        let value = |e: &str| {
            let r = run(e, "x = 2").unwrap();
            r.rows[r.output].value.item().unwrap()
        };
        assert_eq!(value("1 + 2 * 3"), 7.0);
        assert_eq!(value("(1 + 2) * 3"), 9.0);
        assert_eq!(value("2 ^ 3 ^ 2"), 512.0);
        assert_eq!(value("-x ^ 2"), -4.0);
        assert_eq!(value("8 / 2 / 2"), 2.0);
        assert_eq!(value("x - 3 - 1"), -2.0);
        assert_eq!(value("1e-1 * 10"), 1.0);
    }

    #[test]
    fn tensors_and_neurons() {
        let r = run(
            "sigmoid(dot(w, x) + b)",
            "w = [0.5, -1], x = [2, 1]\nb = 0.25",
        )
        .unwrap();
        let y = r.rows[r.output].value.item().unwrap();
        assert!((y - 1.0 / (1.0 + (-0.25f64).exp())).abs() < 1e-15);
        let w = r
            .rows
            .iter()
            .position(|row| row.label.as_deref() == Some("w"))
            .unwrap();
        let g = r.grads[w].as_ref().unwrap().to_vec();
        let s = y * (1.0 - y);
        assert!((g[0] - 2.0 * s).abs() < 1e-15 && (g[1] - s).abs() < 1e-15);
        let m = run("sum(m @ v)", "m = [[1, 2], [3, 4]]; v = [[1], [1]]").unwrap();
        assert_eq!(m.rows[m.output].value.item().unwrap(), 10.0);
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = run("tanh(a * + b)", "a = 1, b = 2").unwrap_err();
        assert_eq!((e.field, e.column), ("expression", 10));
        let e = run("a + c", "a = 1").unwrap_err();
        assert_eq!(e.column, 5);
        assert!(e.message.contains("unknown name `c`"), "{}", e.message);
        let e = run("foo(a)", "a = 1").unwrap_err();
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown function"));
        let e = run("x * y", "x = [1, 2], y = [1, 2, 3]").unwrap_err();
        assert_eq!(e.column, 3, "the operator: {}", e.message);
        let e = run("x", "x = [1, 2]").unwrap_err();
        assert!(e.message.contains("sum(...)"));
        let e = run("(a", "a = 1").unwrap_err();
        assert_eq!(e.column, 3);
        assert!(e.message.contains("expected `)`"));
        let e = run("a $ b", "a = 1").unwrap_err();
        assert_eq!(e.column, 3);
        let e = run("a", "a = [1, 2\nb = 3").unwrap_err();
        assert_eq!(e.field, "values");
        let e = run("a", "a = [[1, 2], [3]]").unwrap_err();
        assert!(e.message.contains("rows of 2 and 1"));
        let e = run("a", "a = 1, a = 2").unwrap_err();
        assert!(e.message.contains("twice"));
        let e = run("pow(a)", "a = 1").unwrap_err();
        assert!(e.message.contains("takes 2 arguments"));
    }

    #[test]
    fn values_that_are_not_finite_are_named_at_their_column() {
        let e = run("a / 0 + 1", "a = 1").unwrap_err();
        assert_eq!(e.column, 3, "{e}");
        assert!(e.message.contains("`div` gives inf"), "{}", e.message);
        // An op that cannot fail: its error surfaces at the end, still at its own column.
        let e = run("2 * log(a - 1)", "a = 1").unwrap_err();
        assert_eq!(e.column, 5, "{e}");
        assert!(e.message.contains("`ln` gives -inf"), "{}", e.message);
        // A finite value whose gradient is not: sqrt at 0.
        let e = run("sqrt(a)", "a = 0").unwrap_err();
        assert_eq!(e.column, 1, "{e}");
        assert!(
            e.message.contains("gradient through `sqrt`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn limits_hold() {
        let limits = ExprLimits::default();
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(run(&deep, "a = 1").unwrap_err().message.contains("nested"));
        let minus = format!("{}a", "-".repeat(10_000));
        assert!(
            record(
                &minus,
                "a = 1",
                &ExprLimits {
                    max_expression: 20_000,
                    ..limits
                }
            )
            .is_err()
        );
        let long = "a + ".repeat(200) + "a";
        assert!(
            run(&long, "a = 1")
                .unwrap_err()
                .message
                .contains("longer than")
        );
        let many = format!("x = [{}]", vec!["1"; 100].join(", "));
        assert!(
            run("sum(x)", &many)
                .unwrap_err()
                .message
                .contains("more than 64")
        );
        let nodes = "a * ".repeat(99) + "a";
        let tight = ExprLimits {
            max_nodes: 50,
            ..limits
        };
        assert!(
            record(&nodes, "a = 1", &tight)
                .unwrap_err()
                .message
                .contains("nodes")
        );
    }
}
