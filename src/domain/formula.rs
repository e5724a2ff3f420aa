//! Formula language for methodology versions.
//!
//! An admin stores a formula such as
//! `distance_m / 1000 * (car_g_per_pkm - region.grid_ef_g_per_kwh * metro_kwh_per_pkm)`
//! with a methodology version; the service evaluates it once per activity to
//! get grams of CO2e. Everything is decimal: credits are money-like, and binary
//! floating point would make `0.1 + 0.2` differ from what an auditor computes
//! by hand.
//!
//! The source is parsed with pest and compiled into a flat node arena. Chains
//! of one precedence level (`a + b - c`) are stored as a single node with a
//! list of links, so the tree depth is bounded by the syntactic nesting (which
//! is capped) rather than by the formula length; evaluation and printing can
//! therefore recurse without risking a stack overflow.

use std::collections::HashMap;
use std::fmt::Write as _;

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;
use rust_decimal::{Decimal, RoundingStrategy};

use grammar::{FormulaParser, Rule};

/// Longest accepted source, in bytes. Formulas are stored per methodology
/// version and shown in the admin UI; anything longer is a mistake or abuse.
pub const MAX_SOURCE_LEN: usize = 4096;

/// Deepest accepted nesting: parentheses, call arguments and unary minus
/// each add one level. Keeps the recursive parser and evaluator far away
/// from the thread's stack limit.
pub const MAX_DEPTH: usize = 64;

// A private module keeps the generated `Rule` enum out of the public API.
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "domain/formula.pest"]
    pub struct FormulaParser;
}

/// A parsed and compiled formula, ready to be evaluated many times.
#[derive(Debug, Clone)]
pub struct Formula {
    source: String,
    nodes: Vec<Node>,
    links: Vec<Link>,
    root: usize,
    variables: Vec<String>,
    /// Byte offset of each variable's first appearance, for `check_names`.
    variable_offsets: Vec<usize>,
}

/// Longest operand, in characters, that a breakdown step or an error message
/// writes out; a longer one is named by reference (`[3]`, the value of step
/// 3). A step's text therefore stays short however long the formula is:
/// written out in full, each step of `a + a + … + a` would repeat everything
/// before it, and the breakdown would grow with the square of the formula.
/// Long enough for the names and literals of real formulas.
pub const MAX_INLINE_OPERAND: usize = 32;

/// One line of an explanation: an operation (or an input) and the value it had.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// What was computed, in canonical notation. An operand longer than
    /// [`MAX_INLINE_OPERAND`] characters is written `[n]`: the value of the
    /// breakdown's step `n` (counting from 0).
    pub expr: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub value: Decimal,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormulaError {
    #[error("syntax error at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        offset: usize,
        message: String,
    },
    #[error("unknown name `{}` at line {line}, column {column}", shorten(.name))]
    UnknownName {
        name: String,
        line: usize,
        column: usize,
        offset: usize,
    },
    #[error("formula too long or too deeply nested")]
    TooComplex,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("division by zero in `{expr}`")]
    DivisionByZero { expr: String },
    #[error("arithmetic overflow in `{expr}`")]
    Overflow { expr: String },
    #[error("expected {expected} values, got {got}")]
    Arity { expected: usize, got: usize },
}

/// Converts a result to whole grams.
///
/// Banker's rounding avoids a systematic upward bias when many small
/// activities are summed; negative results (an activity that emits more than
/// the baseline) earn nothing rather than a debit.
pub fn to_grams(value: Decimal) -> Result<i64, EvalError> {
    let rounded = value.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    if rounded <= Decimal::ZERO {
        return Ok(0);
    }
    i64::try_from(rounded).map_err(|_| EvalError::Overflow {
        expr: format!("to_grams({value})"),
    })
}

impl Formula {
    /// Parses and compiles. Errors carry a 1-based line, column and byte
    /// offset, and say what was expected or what was found.
    pub fn parse(source: &str) -> Result<Formula, FormulaError> {
        if source.len() > MAX_SOURCE_LEN || paren_depth(source) > MAX_DEPTH {
            // Checked before pest runs: its generated parser recurses once per
            // parenthesis level, so unbounded nesting could overflow the stack.
            return Err(FormulaError::TooComplex);
        }
        let mut pairs = FormulaParser::parse(Rule::formula, source).map_err(|e| from_pest(source, &e))?;
        let formula = pairs.next().ok_or_else(|| malformed(source, 0))?;
        let expr = formula
            .into_inner()
            .find(|p| p.as_rule() == Rule::expr)
            .ok_or_else(|| malformed(source, 0))?;

        let mut compiler = Compiler {
            source,
            nodes: Vec::new(),
            links: Vec::new(),
            variables: Vec::new(),
            variable_offsets: Vec::new(),
            variable_index: HashMap::new(),
        };
        let root = compiler.chain(expr, 0)?;
        Ok(Formula {
            source: source.to_owned(),
            nodes: compiler.nodes,
            links: compiler.links,
            root,
            variables: compiler.variables,
            variable_offsets: compiler.variable_offsets,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Distinct names the formula references, in order of first appearance.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Save-time check: every variable must be known; the first unknown one
    /// is reported with the position of its first appearance.
    pub fn check_names(&self, is_known: impl Fn(&str) -> bool) -> Result<(), FormulaError> {
        for (name, &offset) in self.variables.iter().zip(&self.variable_offsets) {
            if !is_known(name) {
                let (line, column) = line_col(&self.source, offset);
                return Err(FormulaError::UnknownName {
                    name: name.clone(),
                    line,
                    column,
                    offset,
                });
            }
        }
        Ok(())
    }

    /// Hot path: `values[i]` is the value of `variables()[i]`. Does not
    /// allocate unless it fails.
    pub fn evaluate(&self, values: &[Decimal]) -> Result<Decimal, EvalError> {
        self.check_arity(values)?;
        self.eval(self.root, values, &mut Silent)
            .map_err(|fault| self.describe_fault(fault))
    }

    /// Same result as [`Formula::evaluate`], plus an explanation: one step per
    /// variable, then, in evaluation order, one per binary operation, per
    /// function call and per run of unary minus signs (`--a` is one step).
    /// So there are never more operation steps than operators, and each step
    /// is short (see [`MAX_INLINE_OPERAND`]).
    pub fn evaluate_explained(&self, values: &[Decimal]) -> Result<(Decimal, Vec<Step>), EvalError> {
        self.check_arity(values)?;
        let mut recorder = Recorder {
            node_steps: vec![None; self.nodes.len()],
            link_steps: vec![None; self.links.len()],
            steps: self
                .variables
                .iter()
                .zip(values)
                .map(|(name, &value)| Step {
                    expr: name.clone(),
                    value,
                })
                .collect(),
        };
        let value = self
            .eval(self.root, values, &mut recorder)
            .map_err(|fault| self.describe_fault(fault))?;
        Ok((value, recorder.steps))
    }

    fn check_arity(&self, values: &[Decimal]) -> Result<(), EvalError> {
        if values.len() == self.variables.len() {
            Ok(())
        } else {
            Err(EvalError::Arity {
                expected: self.variables.len(),
                got: values.len(),
            })
        }
    }

    // One evaluator serves both public entry points, so the explained value
    // cannot drift from the plain one; `Silent` compiles the observer away.
    fn eval<O: Observer>(&self, id: usize, values: &[Decimal], obs: &mut O) -> Result<Decimal, Fault> {
        match self.nodes[id] {
            Node::Num(value) => Ok(value),
            // In range: `check_arity` ran and indices come from the compiler.
            Node::Var(index) => Ok(values[index]),
            Node::Neg(_) => {
                // A run of minus signs is one operation, so that `-(-(-a))`
                // is one step rather than one per sign.
                let (operand, signs) = self.negation_run(id);
                let value = self.eval(operand, values, obs)?;
                // Decimal negation only flips the sign bit, so it cannot overflow.
                let value = if signs % 2 == 1 { -value } else { value };
                obs.operation(self, Site::Node(id), value);
                Ok(value)
            }
            Node::Chain { first, start, end } => {
                let mut acc = self.eval(first, values, obs)?;
                for index in start..end {
                    let Link { op, rhs } = self.links[index];
                    let rhs = self.eval(rhs, values, obs)?;
                    let site = Site::Prefix {
                        chain: id,
                        end: index + 1,
                    };
                    acc = apply(op, acc, rhs).map_err(|kind| Fault { kind, site })?;
                    obs.operation(self, site, acc);
                }
                Ok(acc)
            }
            Node::Call(func, a, b) => {
                let a = self.eval(a, values, obs)?;
                let b = self.eval(b, values, obs)?;
                let value = match func {
                    Func::Min => a.min(b),
                    Func::Max => a.max(b),
                };
                obs.operation(self, Site::Node(id), value);
                Ok(value)
            }
        }
    }

    /// The innermost operand of a run of unary minus signs starting at `id`,
    /// and how many signs the run has.
    fn negation_run(&self, mut id: usize) -> (usize, usize) {
        let mut signs = 0;
        while let Node::Neg(operand) = self.nodes[id] {
            id = operand;
            signs += 1;
        }
        (id, signs)
    }

    /// Names the failing operation, its long operands elided (`…`): the
    /// message stays short however long the formula is.
    fn describe_fault(&self, fault: Fault) -> EvalError {
        let expr = self.describe_operation(fault.site, &|_| None);
        match fault.kind {
            FaultKind::DivisionByZero => EvalError::DivisionByZero { expr },
            FaultKind::Overflow => EvalError::Overflow { expr },
        }
    }

    /// The text of one operation: its operator with its operands written out
    /// when they are at most [`MAX_INLINE_OPERAND`] characters long, else
    /// named as `[n]`, `n` being the step `step_of` gives for them (or as `…`
    /// when it gives none). With every operand written out, this is the
    /// operation's canonical text.
    fn describe_operation(&self, site: Site, step_of: &dyn Fn(Site) -> Option<usize>) -> String {
        let mut out = String::new();
        let operand = |site: Site, wrap: bool, out: &mut String| self.write_operand(site, wrap, step_of, out);
        match site {
            Site::Prefix { chain, end } => {
                if let Node::Chain { first, start, .. } = self.nodes[chain] {
                    let link = self.links[end - 1];
                    let level = link.op.level();
                    if end - 1 == start {
                        operand(
                            Site::Node(first),
                            self.level(first).is_some_and(|l| l < level),
                            &mut out,
                        );
                    } else {
                        // Left associativity: the operations before need no parentheses.
                        operand(Site::Prefix { chain, end: end - 1 }, false, &mut out);
                    }
                    out.push(' ');
                    out.push_str(link.op.symbol());
                    out.push(' ');
                    let wrap = self.level(link.rhs).is_some_and(|l| l <= level);
                    operand(Site::Node(link.rhs), wrap, &mut out);
                }
            }
            Site::Node(id) => match self.nodes[id] {
                Node::Neg(_) => {
                    let (inner, signs) = self.negation_run(id);
                    // As `write_node` prints nested negations: `-(-(-a))`.
                    out.push('-');
                    out.push_str(&"(-".repeat(signs - 1));
                    operand(
                        Site::Node(inner),
                        matches!(self.nodes[inner], Node::Chain { .. }),
                        &mut out,
                    );
                    out.push_str(&")".repeat(signs - 1));
                }
                Node::Call(func, a, b) => {
                    out.push_str(func.name());
                    out.push('(');
                    operand(Site::Node(a), false, &mut out);
                    out.push_str(", ");
                    operand(Site::Node(b), false, &mut out);
                    out.push(')');
                }
                // Not operations: a whole node is only an operand.
                Node::Num(_) | Node::Var(_) | Node::Chain { .. } => {
                    operand(site, false, &mut out);
                }
            },
        }
        out
    }

    /// An operand of an operation: its canonical text (parenthesised if `wrap`)
    /// if that is short enough, else a reference to the step that computed it.
    fn write_operand(
        &self,
        site: Site,
        wrap: bool,
        step_of: &dyn Fn(Site) -> Option<usize>,
        out: &mut String,
    ) {
        match self.render_within(site, MAX_INLINE_OPERAND) {
            Some(text) if wrap => {
                out.push('(');
                out.push_str(&text);
                out.push(')');
            }
            Some(text) => out.push_str(&text),
            None => match step_of(site) {
                // Writing into a String cannot fail.
                Some(step) => {
                    let _ = write!(out, "[{step}]");
                }
                None => out.push('…'),
            },
        }
    }

    /// Canonical text of a sub-expression: single spaces around binary
    /// operators, minimal parentheses; `None` if longer than `limit` bytes
    /// (the grammar only accepts ASCII, so bytes are characters).
    /// Re-parsing it gives the same value and the same explanation. Stops
    /// writing once past the limit, so checking a long operand is cheap.
    fn render_within(&self, site: Site, limit: usize) -> Option<String> {
        let mut out = Bounded {
            text: String::new(),
            limit,
        };
        match site {
            Site::Node(id) => self.write_node(id, &mut out),
            Site::Prefix { chain, end } => {
                if let Node::Chain { first, start, .. } = self.nodes[chain] {
                    self.write_chain(first, &self.links[start..end], &mut out);
                }
            }
        }
        (!out.is_full()).then_some(out.text)
    }

    fn write_node(&self, id: usize, out: &mut Bounded) {
        if out.is_full() {
            return;
        }
        match self.nodes[id] {
            Node::Num(value) => out.push_str(&value.to_string()),
            Node::Var(index) => out.push_str(&self.variables[index]),
            Node::Neg(operand) => {
                out.push('-');
                // `-(a * b)` and `-a * b` explain differently, and `--a`
                // reads like a typo, so both keep their parentheses.
                let wrap = matches!(self.nodes[operand], Node::Chain { .. } | Node::Neg(_));
                self.write_wrapped(operand, wrap, out);
            }
            Node::Chain { first, start, end } => {
                self.write_chain(first, &self.links[start..end], out);
            }
            Node::Call(func, a, b) => {
                out.push_str(func.name());
                out.push('(');
                self.write_node(a, out);
                out.push_str(", ");
                self.write_node(b, out);
                out.push(')');
            }
        }
    }

    fn write_chain(&self, first: usize, links: &[Link], out: &mut Bounded) {
        let Some(level) = links.first().map(|link| link.op.level()) else {
            self.write_node(first, out);
            return;
        };
        // Left associativity: a same-level chain on the left needs no
        // parentheses, one on the right does (`a - (b - c)`).
        let wrap_first = self.level(first).is_some_and(|l| l < level);
        self.write_wrapped(first, wrap_first, out);
        for link in links {
            if out.is_full() {
                return;
            }
            out.push(' ');
            out.push_str(link.op.symbol());
            out.push(' ');
            let wrap = self.level(link.rhs).is_some_and(|l| l <= level);
            self.write_wrapped(link.rhs, wrap, out);
        }
    }

    fn write_wrapped(&self, id: usize, wrap: bool, out: &mut Bounded) {
        if wrap {
            out.push('(');
            self.write_node(id, out);
            out.push(')');
        } else {
            self.write_node(id, out);
        }
    }

    fn level(&self, id: usize) -> Option<Level> {
        match self.nodes[id] {
            Node::Chain { start, .. } => self.links.get(start).map(|link| link.op.level()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Node {
    Num(Decimal),
    /// Index into `Formula::variables` (and into the values slice).
    Var(usize),
    Neg(usize),
    /// `first` followed by `links[start..end]`, all of one precedence level,
    /// applied left to right.
    Chain {
        first: usize,
        start: usize,
        end: usize,
    },
    Call(Func, usize, usize),
}

#[derive(Debug, Clone, Copy)]
struct Link {
    op: BinOp,
    rhs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    fn level(self) -> Level {
        match self {
            BinOp::Add | BinOp::Sub => Level::Additive,
            BinOp::Mul | BinOp::Div => Level::Multiplicative,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Additive,
    Multiplicative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Min,
    Max,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        match name {
            "min" => Some(Func::Min),
            "max" => Some(Func::Max),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Func::Min => "min",
            Func::Max => "max",
        }
    }
}

fn apply(op: BinOp, a: Decimal, b: Decimal) -> Result<Decimal, FaultKind> {
    match op {
        BinOp::Add => a.checked_add(b).ok_or(FaultKind::Overflow),
        BinOp::Sub => a.checked_sub(b).ok_or(FaultKind::Overflow),
        BinOp::Mul => a.checked_mul(b).ok_or(FaultKind::Overflow),
        // `checked_div` returns None for both causes; tell them apart here.
        BinOp::Div if b.is_zero() => Err(FaultKind::DivisionByZero),
        // The quotient's scale is an artefact of the division algorithm
        // (3200 / 1000 comes back as 3.20); trailing zeros would otherwise
        // leak into every later step and into the stored explanation.
        BinOp::Div => a.checked_div(b).map(|q| q.normalize()).ok_or(FaultKind::Overflow),
    }
}

/// Where a value was produced, kept as indices so that the hot path never
/// builds strings; text is rendered only for errors and explanations.
#[derive(Debug, Clone, Copy)]
enum Site {
    Node(usize),
    /// The first `end - start` links of a chain, i.e. one binary operation.
    Prefix {
        chain: usize,
        end: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    kind: FaultKind,
    site: Site,
}

#[derive(Debug, Clone, Copy)]
enum FaultKind {
    DivisionByZero,
    Overflow,
}

/// Text being rendered, given up on once longer than `limit` bytes.
struct Bounded {
    text: String,
    limit: usize,
}

impl Bounded {
    fn is_full(&self) -> bool {
        self.text.len() > self.limit
    }

    fn push(&mut self, c: char) {
        if !self.is_full() {
            self.text.push(c);
        }
    }

    fn push_str(&mut self, s: &str) {
        if !self.is_full() {
            self.text.push_str(s);
        }
    }
}

trait Observer {
    fn operation(&mut self, formula: &Formula, site: Site, value: Decimal);
}

struct Silent;

impl Observer for Silent {
    #[inline(always)]
    fn operation(&mut self, _: &Formula, _: Site, _: Decimal) {}
}

struct Recorder {
    steps: Vec<Step>,
    /// The step of each run of minus signs and of each call, by node.
    node_steps: Vec<Option<usize>>,
    /// The step of each binary operation, by link.
    link_steps: Vec<Option<usize>>,
}

impl Recorder {
    /// The step whose value is the operand at `site`, if one was recorded.
    fn step_of(&self, formula: &Formula, site: Site) -> Option<usize> {
        match site {
            Site::Prefix { end, .. } => self.link_steps[end - 1],
            Site::Node(id) => match formula.nodes[id] {
                // Variables' steps come first, in the variables' order.
                Node::Var(index) => Some(index),
                Node::Chain { end, .. } => self.link_steps[end - 1],
                Node::Num(_) | Node::Neg(_) | Node::Call(..) => self.node_steps[id],
            },
        }
    }
}

impl Observer for Recorder {
    fn operation(&mut self, formula: &Formula, site: Site, value: Decimal) {
        let expr = formula.describe_operation(site, &|operand| self.step_of(formula, operand));
        let step = Some(self.steps.len());
        match site {
            Site::Prefix { end, .. } => self.link_steps[end - 1] = step,
            Site::Node(id) => self.node_steps[id] = step,
        }
        self.steps.push(Step { expr, value });
    }
}

/// Turns pest's parse tree into the node arena.
struct Compiler<'s> {
    source: &'s str,
    nodes: Vec<Node>,
    links: Vec<Link>,
    variables: Vec<String>,
    variable_offsets: Vec<usize>,
    variable_index: HashMap<&'s str, usize>,
}

impl<'s> Compiler<'s> {
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Compiles an `expr` (operands are `term`s) or a `term` (operands are
    /// `factor`s).
    fn chain(&mut self, pair: Pair<'s, Rule>, depth: usize) -> Result<usize, FormulaError> {
        let offset = pair.as_span().start();
        let mut inner = pair.into_inner();
        let first = inner.next().ok_or_else(|| malformed(self.source, offset))?;
        let first = self.operand(first, depth)?;
        // Collected locally because compiling an operand may append the
        // links of nested chains to `self.links`.
        let mut links = Vec::new();
        while let Some(op) = inner.next() {
            let op_offset = op.as_span().start();
            let op = match op.as_rule() {
                Rule::add => BinOp::Add,
                Rule::sub => BinOp::Sub,
                Rule::mul => BinOp::Mul,
                Rule::div => BinOp::Div,
                _ => return Err(malformed(self.source, op_offset)),
            };
            let rhs = inner.next().ok_or_else(|| malformed(self.source, op_offset))?;
            let rhs = self.operand(rhs, depth)?;
            links.push(Link { op, rhs });
        }
        if links.is_empty() {
            return Ok(first);
        }
        let start = self.links.len();
        self.links.extend(links);
        let end = self.links.len();
        Ok(self.push(Node::Chain { first, start, end }))
    }

    fn operand(&mut self, pair: Pair<'s, Rule>, depth: usize) -> Result<usize, FormulaError> {
        match pair.as_rule() {
            Rule::term => self.chain(pair, depth),
            Rule::factor => self.factor(pair, depth),
            _ => Err(malformed(self.source, pair.as_span().start())),
        }
    }

    fn factor(&mut self, pair: Pair<'s, Rule>, depth: usize) -> Result<usize, FormulaError> {
        let offset = pair.as_span().start();
        let mut inner = pair.into_inner().peekable();
        let mut negations = 0;
        while inner.next_if(|p| p.as_rule() == Rule::neg).is_some() {
            negations += 1;
        }
        let depth = depth + negations;
        if depth > MAX_DEPTH {
            return Err(FormulaError::TooComplex);
        }
        let primary = inner.next().ok_or_else(|| malformed(self.source, offset))?;
        let mut node = match primary.as_rule() {
            Rule::number => self.number(&primary)?,
            Rule::name => self.name(&primary)?,
            Rule::call => self.call(primary, depth)?,
            Rule::open => {
                let expr = inner.next().ok_or_else(|| malformed(self.source, offset))?;
                self.nested(expr, depth)?
            }
            _ => return Err(malformed(self.source, primary.as_span().start())),
        };
        for _ in 0..negations {
            node = self.push(Node::Neg(node));
        }
        Ok(node)
    }

    fn nested(&mut self, expr: Pair<'s, Rule>, depth: usize) -> Result<usize, FormulaError> {
        if depth + 1 > MAX_DEPTH {
            return Err(FormulaError::TooComplex);
        }
        self.chain(expr, depth + 1)
    }

    fn number(&mut self, pair: &Pair<'s, Rule>) -> Result<usize, FormulaError> {
        let text = pair.as_str();
        // `from_str_exact` refuses digits that would be silently rounded away,
        // so a literal means exactly what the admin typed.
        let value = Decimal::from_str_exact(text).map_err(|_| {
            syntax(
                self.source,
                pair.as_span().start(),
                format!(
                    "number `{}` does not fit a decimal (at most 28 digits after the point, magnitude below 7.9e28)",
                    shorten(text)
                ),
            )
        })?;
        Ok(self.push(Node::Num(value)))
    }

    fn name(&mut self, pair: &Pair<'s, Rule>) -> Result<usize, FormulaError> {
        let name = pair.as_str();
        let span = pair.as_span();
        if Func::from_name(name).is_some() {
            // Reserved so that `min` can never mean both a variable and a
            // function depending on what follows it.
            return Err(syntax(
                self.source,
                span.end(),
                format!("expected `(` after `{name}`"),
            ));
        }
        let index = match self.variable_index.get(name) {
            Some(&index) => index,
            None => {
                let index = self.variables.len();
                self.variables.push(name.to_owned());
                self.variable_offsets.push(span.start());
                self.variable_index.insert(name, index);
                index
            }
        };
        Ok(self.push(Node::Var(index)))
    }

    fn call(&mut self, pair: Pair<'s, Rule>, depth: usize) -> Result<usize, FormulaError> {
        let offset = pair.as_span().start();
        let mut inner = pair.into_inner();
        let ident = inner.next().ok_or_else(|| malformed(self.source, offset))?;
        let name = ident.as_str();
        let func = Func::from_name(name).ok_or_else(|| {
            syntax(
                self.source,
                offset,
                format!("unknown function `{}`; expected `min` or `max`", shorten(name)),
            )
        })?;
        let args: Vec<Pair<'s, Rule>> = inner.filter(|p| p.as_rule() == Rule::expr).collect();
        let [a, b] = <[Pair<'s, Rule>; 2]>::try_from(args).map_err(|args| {
            syntax(
                self.source,
                offset,
                format!("`{name}` takes exactly 2 arguments, found {}", args.len()),
            )
        })?;
        let a = self.nested(a, depth)?;
        let b = self.nested(b, depth)?;
        Ok(self.push(Node::Call(func, a, b)))
    }
}

/// Deepest parenthesis nesting, counted without parsing.
fn paren_depth(source: &str) -> usize {
    let mut depth = 0usize;
    let mut max = 0;
    for byte in source.bytes() {
        match byte {
            b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn syntax(source: &str, offset: usize, message: String) -> FormulaError {
    let (line, column) = line_col(source, offset);
    FormulaError::Syntax {
        line,
        column,
        offset,
        message,
    }
}

/// The grammar guarantees the tree shape the compiler walks; this only exists
/// so that a grammar/compiler mismatch is an error instead of a panic.
fn malformed(source: &str, offset: usize) -> FormulaError {
    syntax(source, offset, "internal error: unexpected parse tree".to_owned())
}

fn from_pest(source: &str, error: &pest::error::Error<Rule>) -> FormulaError {
    let offset = match error.location {
        InputLocation::Pos(offset) => offset,
        InputLocation::Span((start, _)) => start,
    };
    let message = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let expected = describe_expected(positives);
            let found = describe_found(source, offset);
            if expected.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("unexpected {found}; expected {expected}")
            }
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    syntax(source, offset, message)
}

/// Maps pest's rule names to what an admin would call them. Any rule that
/// starts an operand means the same thing to a user, so they collapse into
/// one phrase.
fn describe_expected(positives: &[Rule]) -> String {
    let (mut operand, mut open, mut operator, mut comma, mut close, mut end) =
        (false, false, false, false, false, false);
    for rule in positives {
        match rule {
            Rule::expr
            | Rule::term
            | Rule::factor
            | Rule::number
            | Rule::name
            | Rule::ident
            | Rule::call
            | Rule::neg => operand = true,
            // Only reported on its own after an identifier (a would-be call);
            // listing it next to the operators would suggest `a (b)` is valid.
            Rule::open => open = true,
            Rule::add | Rule::sub | Rule::mul | Rule::div => operator = true,
            Rule::comma => comma = true,
            Rule::close => close = true,
            Rule::EOI => end = true,
            _ => {}
        }
    }
    let mut items: Vec<&str> = Vec::new();
    if operand {
        items.extend(["a number", "a name", "`(`", "`-`", "`min`", "`max`"]);
    }
    if open && items.is_empty() && !(operator || comma || close || end) {
        items.push("`(`");
    }
    if operator {
        items.push("an operator (`+`, `-`, `*`, `/`)");
    }
    if comma {
        items.push("`,`");
    }
    if close {
        items.push("`)`");
    }
    if end {
        items.push("end of input");
    }
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

fn describe_found(source: &str, offset: usize) -> String {
    let rest = source.get(offset..).unwrap_or("");
    match rest.chars().next() {
        None => "end of input".to_owned(),
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            format!("`{}`", shorten(&rest[..len]))
        }
        Some(c) => format!("`{}`", c.escape_debug()),
    }
}

/// Keeps error messages readable when the offending token is huge.
fn shorten(text: &str) -> String {
    /// Characters of a token quoted in a message: enough to recognise it.
    const LIMIT: usize = 32;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("test decimal")
    }

    /// Evaluates `source` with variables looked up by name in `vars`.
    fn eval_with(source: &str, vars: &[(&str, &str)]) -> Result<Decimal, EvalError> {
        let formula = Formula::parse(source).expect("test formula parses");
        let values: Vec<Decimal> = formula
            .variables()
            .iter()
            .map(|name| {
                let (_, value) = vars
                    .iter()
                    .find(|(n, _)| n == name)
                    .unwrap_or_else(|| panic!("no test value for {name}"));
                dec(value)
            })
            .collect();
        formula.evaluate(&values)
    }

    fn eval(source: &str) -> Decimal {
        eval_with(source, &[]).expect("test formula evaluates")
    }

    fn syntax_at(source: &str) -> (usize, usize, usize, String) {
        match Formula::parse(source) {
            Err(FormulaError::Syntax {
                line,
                column,
                offset,
                message,
            }) => (line, column, offset, message),
            other => panic!("expected a syntax error for {source:?}, got {other:?}"),
        }
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("10 - 2 - 3"), dec("5"));
        assert_eq!(eval("2 + 3 * 4"), dec("14"));
        assert_eq!(eval("2 * 3 + 4"), dec("10"));
        assert_eq!(eval("8 / 2 / 2"), dec("2"));
        assert_eq!(eval("8 / 2 * 2"), dec("8"));
        assert_eq!(eval("1 - 2 + 3"), dec("2"));
    }

    #[test]
    fn parentheses() {
        assert_eq!(eval("(2 + 3) * 4"), dec("20"));
        assert_eq!(eval("10 - (2 - 3)"), dec("11"));
        assert_eq!(eval("8 / (2 / 2)"), dec("8"));
        assert_eq!(eval("((((7))))"), dec("7"));
    }

    #[test]
    fn unary_minus() {
        assert_eq!(eval("-3"), dec("-3"));
        assert_eq!(eval("-(1 + 2)"), dec("-3"));
        assert_eq!(eval("--3"), dec("3"));
        assert_eq!(eval("2 * -3"), dec("-6"));
        assert_eq!(eval("2 - -3"), dec("5"));
        assert_eq!(eval("-2 * 3 + 1"), dec("-5"));
        assert_eq!(eval_with("-x", &[("x", "4.5")]), Ok(dec("-4.5")));
    }

    #[test]
    fn min_and_max() {
        assert_eq!(eval("min(3, 4)"), dec("3"));
        assert_eq!(eval("max(3, 4)"), dec("4"));
        assert_eq!(eval("max(0, 1 - 5) + min(2 * 3, 10)"), dec("6"));
        assert_eq!(eval("min(max(1, 2), max(3, -4))"), dec("2"));
    }

    #[test]
    fn dotted_names_and_whitespace() {
        let source = "distance_m / 1000 * (car_g_per_pkm - region.grid_ef_g_per_kwh * metro_kwh_per_pkm)";
        let vars = [
            ("distance_m", "5000"),
            ("car_g_per_pkm", "171"),
            ("region.grid_ef_g_per_kwh", "581"),
            ("metro_kwh_per_pkm", "0.04"),
        ];
        assert_eq!(eval_with(source, &vars), Ok(dec("738.8")));
        let spaced =
            " \n\tdistance_m/1000*( car_g_per_pkm -\r\n region.grid_ef_g_per_kwh\t*metro_kwh_per_pkm ) ";
        assert_eq!(eval_with(spaced, &vars), Ok(dec("738.8")));
        assert_eq!(
            eval_with("a.b.c_1 + _x", &[("a.b.c_1", "1"), ("_x", "2")]),
            Ok(dec("3"))
        );
    }

    #[test]
    fn exact_decimal_results() {
        assert_eq!(eval("0.1 + 0.2").to_string(), "0.3");
        assert_eq!(eval("0.1 + 0.2"), dec("0.3"));
        assert_eq!(eval("1 / 3 * 3"), dec("0.9999999999999999999999999999"));
        assert_eq!(eval("3200 / 1000 * 46.7"), dec("149.44"));
    }

    #[test]
    fn to_grams_uses_bankers_rounding_and_clamps() {
        assert_eq!(to_grams(dec("0.5")), Ok(0));
        assert_eq!(to_grams(dec("1.5")), Ok(2));
        assert_eq!(to_grams(dec("2.5")), Ok(2));
        assert_eq!(to_grams(dec("3.5")), Ok(4));
        assert_eq!(to_grams(dec("2.4999")), Ok(2));
        assert_eq!(to_grams(dec("2.5001")), Ok(3));
        assert_eq!(to_grams(dec("-3")), Ok(0));
        assert_eq!(to_grams(dec("-0.5")), Ok(0));
        assert_eq!(to_grams(dec("9223372036854775807")), Ok(i64::MAX));
        assert!(matches!(
            to_grams(dec("9223372036854775808")),
            Err(EvalError::Overflow { .. })
        ));
        assert!(matches!(to_grams(Decimal::MAX), Err(EvalError::Overflow { .. })));
    }

    #[test]
    fn division_by_zero_names_the_sub_expression() {
        assert_eq!(
            eval_with("1 / (a - a)", &[("a", "2")]),
            Err(EvalError::DivisionByZero {
                expr: "1 / (a - a)".to_owned()
            })
        );
        assert_eq!(
            eval_with("x + 2 * y / 0 - 1", &[("x", "1"), ("y", "1")]),
            Err(EvalError::DivisionByZero {
                expr: "2 * y / 0".to_owned()
            })
        );
        let err = eval_with("1 / (a - a)", &[("a", "2")]).unwrap_err();
        assert_eq!(err.to_string(), "division by zero in `1 / (a - a)`");
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(
            eval_with("79228162514264337593543950335 * 2", &[]),
            Err(EvalError::Overflow {
                expr: "79228162514264337593543950335 * 2".to_owned()
            })
        );
        assert!(matches!(
            eval_with("79228162514264337593543950335 + 1", &[]),
            Err(EvalError::Overflow { .. })
        ));
        assert!(matches!(
            eval_with("-79228162514264337593543950335 - 1", &[]),
            Err(EvalError::Overflow { .. })
        ));
        assert!(matches!(
            eval_with("79228162514264337593543950335 / 0.1", &[]),
            Err(EvalError::Overflow { .. })
        ));
    }

    #[test]
    fn literal_that_does_not_fit_is_a_syntax_error() {
        let (line, column, offset, message) = syntax_at("1 + 79228162514264337593543950336");
        assert_eq!((line, column, offset), (1, 5, 4));
        assert!(message.contains("does not fit"), "{message}");
        let (_, column, _, _) = syntax_at("0.00000000000000000000000000001");
        assert_eq!(column, 1);
        // 28 fractional digits is the most a Decimal holds exactly.
        assert!(Formula::parse("0.0000000000000000000000000001").is_ok());
    }

    #[test]
    fn syntax_error_positions_and_messages() {
        let (line, column, offset, message) = syntax_at("distance_m * * 2");
        assert_eq!((line, column, offset), (1, 14, 13));
        assert_eq!(
            message,
            "unexpected `*`; expected a number, a name, `(`, `-`, `min` or `max`"
        );

        let (_, column, _, message) = syntax_at("min(1)");
        assert_eq!(column, 1);
        assert_eq!(message, "`min` takes exactly 2 arguments, found 1");
        let (_, _, _, message) = syntax_at("max(1, 2, 3)");
        assert_eq!(message, "`max` takes exactly 2 arguments, found 3");

        let (_, column, _, message) = syntax_at("2 * foo(1,2)");
        assert_eq!(column, 5);
        assert_eq!(message, "unknown function `foo`; expected `min` or `max`");
        assert!(matches!(
            Formula::parse("foo(1,2)"),
            Err(FormulaError::Syntax { column: 1, .. })
        ));

        let (_, column, _, message) = syntax_at("(1 + 2");
        assert_eq!(column, 7);
        assert_eq!(
            message,
            "unexpected end of input; expected an operator (`+`, `-`, `*`, `/`) or `)`"
        );

        let (_, column, _, message) = syntax_at("1 +");
        assert_eq!(column, 4);
        assert!(
            message.starts_with("unexpected end of input; expected a number"),
            "{message}"
        );

        let (line, column, offset, message) = syntax_at("");
        assert_eq!((line, column, offset), (1, 1, 0));
        assert!(
            message.starts_with("unexpected end of input; expected a number"),
            "{message}"
        );

        let (_, column, _, message) = syntax_at("a..b");
        assert_eq!(column, 2);
        assert_eq!(
            message,
            "unexpected `.`; expected an operator (`+`, `-`, `*`, `/`) or end of input"
        );

        let (_, column, _, message) = syntax_at("a b");
        assert_eq!(column, 3);
        assert_eq!(
            message,
            "unexpected `b`; expected an operator (`+`, `-`, `*`, `/`) or end of input"
        );

        let (_, column, _, message) = syntax_at("1.2.3");
        assert_eq!(column, 4);
        assert!(message.starts_with("unexpected `.`"), "{message}");

        let (_, column, _, message) = syntax_at("1 + 2)");
        assert_eq!(column, 6);
        assert_eq!(
            message,
            "unexpected `)`; expected an operator (`+`, `-`, `*`, `/`) or end of input"
        );

        let (_, column, _, message) = syntax_at("min + 1");
        assert_eq!(column, 4);
        assert_eq!(message, "expected `(` after `min`");

        for source in [
            "1e5", "+1", "1 2", "a b", "min(1,)", "12.", ".5", "a.", "x ^ 2", "ä",
        ] {
            syntax_at(source);
        }
    }

    #[test]
    fn syntax_error_on_a_later_line() {
        let source = "a +\n  b *\n  ) ";
        let (line, column, offset, _) = syntax_at(source);
        assert_eq!((line, column, offset), (3, 3, 12));
        let err = Formula::parse(source).unwrap_err();
        assert!(
            err.to_string().starts_with("syntax error at line 3, column 3: "),
            "{err}"
        );
    }

    #[test]
    fn check_names_reports_first_unknown_with_position() {
        let formula = Formula::parse("a + b.c * (d\n + b.c + zz)").unwrap();
        let known = ["a", "d"];
        assert_eq!(
            formula.check_names(|name| known.contains(&name)),
            Err(FormulaError::UnknownName {
                name: "b.c".to_owned(),
                line: 1,
                column: 5,
                offset: 4,
            })
        );
        let known = ["a", "b.c", "d"];
        assert_eq!(
            formula.check_names(|name| known.contains(&name)),
            Err(FormulaError::UnknownName {
                name: "zz".to_owned(),
                line: 2,
                column: 10,
                offset: 22,
            })
        );
        assert_eq!(formula.check_names(|_| true), Ok(()));
    }

    #[test]
    fn variables_are_distinct_in_order_of_appearance() {
        let formula = Formula::parse(
            "distance_m / 1000 * (car_g_per_pkm - region.grid_ef_g_per_kwh * metro_kwh_per_pkm) + distance_m * 0 + min(car_g_per_pkm, x)",
        )
        .unwrap();
        assert_eq!(
            formula.variables(),
            [
                "distance_m",
                "car_g_per_pkm",
                "region.grid_ef_g_per_kwh",
                "metro_kwh_per_pkm",
                "x"
            ]
        );
        assert!(Formula::parse("1 + 2").unwrap().variables().is_empty());
    }

    #[test]
    fn wrong_number_of_values_is_an_arity_error() {
        let formula = Formula::parse("a + b + a").unwrap();
        assert_eq!(
            formula.evaluate(&[dec("1")]),
            Err(EvalError::Arity { expected: 2, got: 1 })
        );
        assert_eq!(
            formula.evaluate_explained(&[dec("1"), dec("2"), dec("3")]),
            Err(EvalError::Arity { expected: 2, got: 3 })
        );
        assert_eq!(formula.evaluate(&[dec("1"), dec("2")]), Ok(dec("4")));
    }

    #[test]
    fn explained_steps() {
        let formula = Formula::parse("distance_m / 1000 * metro_saving_g_per_pkm").unwrap();
        assert_eq!(formula.source(), "distance_m / 1000 * metro_saving_g_per_pkm");
        let (value, steps) = formula.evaluate_explained(&[dec("3200"), dec("46.7")]).unwrap();
        assert_eq!(value, dec("149.44"));
        let step = |expr: &str, value: &str| Step {
            expr: expr.to_owned(),
            value: dec(value),
        };
        assert_eq!(
            steps,
            [
                step("distance_m", "3200"),
                step("metro_saving_g_per_pkm", "46.7"),
                step("distance_m / 1000", "3.2"),
                step("distance_m / 1000 * metro_saving_g_per_pkm", "149.44"),
            ]
        );
        assert_eq!(formula.evaluate(&[dec("3200"), dec("46.7")]), Ok(value));
        let json = serde_json::to_string(&steps[3]).unwrap();
        assert_eq!(
            json,
            r#"{"expr":"distance_m / 1000 * metro_saving_g_per_pkm","value":"149.44"}"#
        );
    }

    #[test]
    fn explained_steps_print_canonically() {
        let formula = Formula::parse("max(0,-(a-b))*(c)+ -a").unwrap();
        let (value, steps) = formula
            .evaluate_explained(&[dec("1"), dec("3"), dec("2")])
            .unwrap();
        assert_eq!(value, dec("3"));
        let exprs: Vec<&str> = steps.iter().map(|s| s.expr.as_str()).collect();
        assert_eq!(
            exprs,
            [
                "a",
                "b",
                "c",
                "a - b",
                "-(a - b)",
                "max(0, -(a - b))",
                "max(0, -(a - b)) * c",
                "-a",
                "max(0, -(a - b)) * c + -a",
            ]
        );
    }

    #[test]
    fn limits_are_errors_not_crashes() {
        assert_eq!(
            Formula::parse(&"1+".repeat(3000)).unwrap_err(),
            FormulaError::TooComplex
        );
        let ok = format!("{}1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(Formula::parse(&ok).unwrap().evaluate(&[]), Ok(dec("1")));
        let deep = format!("{}1{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert_eq!(Formula::parse(&deep).unwrap_err(), FormulaError::TooComplex);
        let unclosed = "(".repeat(4000);
        assert_eq!(Formula::parse(&unclosed).unwrap_err(), FormulaError::TooComplex);
        let calls = format!(
            "{}1, 1{}",
            "min(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(Formula::parse(&calls).unwrap_err(), FormulaError::TooComplex);
        let negations = format!("{}1", "-".repeat(MAX_DEPTH + 1));
        assert_eq!(Formula::parse(&negations).unwrap_err(), FormulaError::TooComplex);
        assert_eq!(
            Formula::parse(&format!("{}1", "-".repeat(MAX_DEPTH)))
                .unwrap()
                .evaluate(&[]),
            Ok(dec("1"))
        );

        // A long flat chain is fine: it does not nest.
        let chain = format!("1{}", " + 1".repeat(1000));
        assert!(chain.len() <= MAX_SOURCE_LEN);
        let formula = Formula::parse(&chain).unwrap();
        assert_eq!(formula.evaluate(&[]), Ok(dec("1001")));
        let (_, steps) = formula.evaluate_explained(&[]).unwrap();
        assert_eq!(steps.len(), 1000);
    }

    /// Operators in a formula's text: the four signs, binary or unary, and
    /// the function calls.
    fn operators(source: &str) -> usize {
        source.matches(['+', '-', '*', '/']).count()
            + source.matches("min(").count()
            + source.matches("max(").count()
    }

    /// A third, to 28 places: every step's value is as long as a decimal gets.
    fn third() -> Decimal {
        dec("0.3333333333333333333333333333")
    }

    /// Explains `source` with every variable a third, and checks what every
    /// explanation promises: at most one step per operator after the inputs,
    /// each short, each reference to an earlier step; returns the steps.
    fn explain_bounded(source: &str) -> Vec<Step> {
        let formula = Formula::parse(source).unwrap_or_else(|e| panic!("{e}"));
        let inputs = formula.variables().len();
        let values = vec![third(); inputs];
        let (value, steps) = formula.evaluate_explained(&values).unwrap();
        assert_eq!(formula.evaluate(&values), Ok(value));
        assert!(steps.len() - inputs <= operators(source), "{} steps", steps.len());
        for (index, step) in steps.iter().enumerate().skip(inputs) {
            // Two operands, an operator or a function's name and parentheses;
            // or one operand under a run of minus signs, which takes at most
            // three characters a sign.
            let most = if step.expr.starts_with("-(-") {
                3 * MAX_DEPTH + MAX_INLINE_OPERAND
            } else {
                2 * MAX_INLINE_OPERAND + 9
            };
            assert!(step.expr.len() <= most, "step {index}: {}", step.expr);
            for reference in step.expr.split('[').skip(1) {
                let (number, _) = reference.split_once(']').unwrap();
                assert!(
                    number.parse::<usize>().unwrap() < index,
                    "step {index}: {}",
                    step.expr
                );
            }
        }
        steps
    }

    /// A breakdown of an accepted formula weighs less than this, which leaves
    /// room for the rest of a 256 KB `/quantify` answer.
    const MOST_BREAKDOWN_BYTES: usize = 192 * 1024;

    fn json_len(steps: &[Step]) -> usize {
        serde_json::to_string(steps).unwrap().len()
    }

    #[test]
    fn long_chains_explain_in_short_steps() {
        let mut sum = "units".to_owned();
        while sum.len() + 2 <= MAX_SOURCE_LEN {
            sum.push_str("+a");
        }
        let steps = explain_bounded(&sum);
        assert_eq!(steps.len(), 2 + (sum.len() - 5) / 2);
        // The first steps are written out; once the sum is long, each step adds
        // one operand to the one before.
        assert_eq!(steps[2].expr, "units + a");
        assert_eq!(steps[8].expr, "units + a + a + a + a + a + a + a");
        assert_eq!(steps[9].expr, "[8] + a");
        assert_eq!(steps.last().unwrap().expr, format!("[{}] + a", steps.len() - 2));
        assert!(json_len(&steps) < MOST_BREAKDOWN_BYTES, "{}", json_len(&steps));

        // Alternating operators, with distinct names: as many steps as a
        // formula can have.
        let mut mixed = "a0".to_owned();
        let mut n = 1;
        loop {
            let term = format!("-x{n}*-y{n}");
            if mixed.len() + term.len() > MAX_SOURCE_LEN {
                break;
            }
            mixed.push_str(&term);
            n += 1;
        }
        let steps = explain_bounded(&mixed);
        assert!(json_len(&steps) < MOST_BREAKDOWN_BYTES, "{}", json_len(&steps));

        // Three steps every four characters (an input, a minus sign, a sum):
        // the most steps a formula can have.
        let letters = ('a'..='z').chain('A'..='Z');
        let mut names = letters
            .clone()
            .flat_map(|a| letters.clone().map(move |b| format!("{a}{b}")));
        let mut dense = names.next().unwrap();
        for name in names.take((MAX_SOURCE_LEN - 2) / 4) {
            dense.push_str(&format!("+-{name}"));
        }
        let steps = explain_bounded(&dense);
        assert!(steps.len() > 3000, "{}", steps.len());
        assert!(json_len(&steps) < MOST_BREAKDOWN_BYTES, "{}", json_len(&steps));
    }

    #[test]
    fn deep_nesting_explains_in_short_steps() {
        let per_level = (MAX_SOURCE_LEN - 1 - 2 * MAX_DEPTH) / 2 / MAX_DEPTH;
        let mut nested = "a".to_owned();
        for _ in 0..MAX_DEPTH {
            nested = format!("({nested}{})", "+b".repeat(per_level));
        }
        let steps = explain_bounded(&nested);
        assert!(json_len(&steps) < MOST_BREAKDOWN_BYTES, "{}", json_len(&steps));

        let mut calls = "a".to_owned();
        for _ in 0..MAX_DEPTH / 2 {
            calls = format!("max(min({calls}, b), b)");
        }
        let steps = explain_bounded(&calls);
        assert_eq!(
            steps.last().unwrap().expr,
            format!("max([{}], b)", steps.len() - 2)
        );
        assert_eq!(steps.last().unwrap().value, third());

        // Runs of minus signs are one step each.
        let signs = format!("-{}", "-".repeat(MAX_DEPTH - 1));
        let mut negated = "a".to_owned();
        while negated.len() + signs.len() + 2 <= MAX_SOURCE_LEN {
            negated.push_str(&format!("+{signs}a"));
        }
        let steps = explain_bounded(&negated);
        assert_eq!(steps.len(), 1 + 2 * negated.matches('+').count());
        assert!(json_len(&steps) < MOST_BREAKDOWN_BYTES, "{}", json_len(&steps));
    }

    #[test]
    fn long_operands_are_named_by_their_step() {
        let long_name = "a_name_longer_than_thirty_two_characters";
        let formula = Formula::parse(&format!("2 * {long_name} + -({})", ["x"; 10].join(" + "))).unwrap();
        let (value, steps) = formula.evaluate_explained(&[dec("3"), dec("1")]).unwrap();
        assert_eq!(value, dec("-4"));
        let exprs: Vec<&str> = steps.iter().map(|s| s.expr.as_str()).collect();
        let xs = |n: usize| ["x"; 10][..n].join(" + ");
        let mut expected = vec![long_name.to_owned(), "x".to_owned(), "2 * [0]".to_owned()];
        expected.extend((2..=9).map(xs));
        expected.extend(["[10] + x", "-[11]", "[2] + [12]"].map(String::from));
        assert_eq!(exprs, expected);
        assert_eq!(steps[11].value, dec("10"));
        assert_eq!(steps[12].value, dec("-10"));
    }

    #[test]
    fn evaluation_errors_name_the_failing_operation_briefly() {
        let long = format!("({}) / (a - a)", "a + ".repeat(1000) + "a");
        assert_eq!(
            eval_with(&long, &[("a", "1")]),
            Err(EvalError::DivisionByZero {
                expr: "… / (a - a)".to_owned()
            })
        );
    }

    #[test]
    fn unknown_names_are_quoted_briefly() {
        let name = "n".repeat(MAX_SOURCE_LEN - 4);
        let err = Formula::parse(&format!("1 + {name}"))
            .unwrap()
            .check_names(|_| false)
            .unwrap_err();
        assert!(matches!(&err, FormulaError::UnknownName { name: n, .. } if *n == name));
        assert!(err.to_string().len() < 100, "{err}");
    }

    /// An independently written reference for the generated expressions.
    #[derive(Debug, Clone)]
    enum Expr {
        Num(Decimal),
        Var(&'static str),
        Neg(Box<Expr>),
        Bin(Box<Expr>, BinOp, Box<Expr>),
        Call(Func, Box<Expr>, Box<Expr>),
    }

    const NAMES: [&str; 4] = ["a", "b", "region.grid_ef", "x_1"];

    impl Expr {
        /// Fully parenthesised, so the text has exactly this tree's shape.
        fn print(&self, space: &str, out: &mut String) {
            match self {
                Expr::Num(d) => out.push_str(&d.to_string()),
                Expr::Var(name) => out.push_str(name),
                Expr::Neg(e) => {
                    out.push('-');
                    e.print(space, out);
                }
                Expr::Bin(l, op, r) => {
                    out.push('(');
                    l.print(space, out);
                    out.push_str(space);
                    out.push_str(op.symbol());
                    out.push_str(space);
                    r.print(space, out);
                    out.push(')');
                }
                Expr::Call(f, a, b) => {
                    out.push_str(f.name());
                    out.push('(');
                    a.print(space, out);
                    out.push(',');
                    out.push_str(space);
                    b.print(space, out);
                    out.push(')');
                }
            }
        }

        fn reference(&self, vars: &[(&str, Decimal)]) -> Result<Decimal, &'static str> {
            Ok(match self {
                Expr::Num(d) => *d,
                Expr::Var(name) => vars.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap(),
                Expr::Neg(e) => -e.reference(vars)?,
                Expr::Bin(l, op, r) => {
                    let (l, r) = (l.reference(vars)?, r.reference(vars)?);
                    match op {
                        BinOp::Add => l.checked_add(r).ok_or("overflow")?,
                        BinOp::Sub => l.checked_sub(r).ok_or("overflow")?,
                        BinOp::Mul => l.checked_mul(r).ok_or("overflow")?,
                        BinOp::Div if r.is_zero() => return Err("division by zero"),
                        BinOp::Div => l.checked_div(r).ok_or("overflow")?,
                    }
                }
                Expr::Call(f, a, b) => {
                    let (a, b) = (a.reference(vars)?, b.reference(vars)?);
                    match f {
                        Func::Min => a.min(b),
                        Func::Max => a.max(b),
                    }
                }
            })
        }
    }

    fn any_decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            Just(Decimal::ZERO),
            (0i64..10_000, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s)),
            (any::<u32>(), any::<u32>(), any::<u32>(), 0u32..=28)
                .prop_map(|(lo, mid, hi, s)| Decimal::from_parts(lo, mid, hi, false, s)),
        ]
    }

    fn any_expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            any_decimal().prop_map(Expr::Num),
            prop::sample::select(&NAMES[..]).prop_map(Expr::Var),
        ];
        leaf.prop_recursive(5, 32, 2, |inner| {
            let op = prop::sample::select(vec![BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div]);
            let func = prop::sample::select(vec![Func::Min, Func::Max]);
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Neg(Box::new(e))),
                (inner.clone(), op, inner.clone()).prop_map(|(l, op, r)| Expr::Bin(
                    Box::new(l),
                    op,
                    Box::new(r)
                )),
                (func, inner.clone(), inner).prop_map(|(f, a, b)| Expr::Call(f, Box::new(a), Box::new(b))),
            ]
        })
    }

    fn kind(result: &Result<Decimal, EvalError>) -> Result<Decimal, &'static str> {
        match result {
            Ok(v) => Ok(*v),
            Err(EvalError::DivisionByZero { .. }) => Err("division by zero"),
            Err(EvalError::Overflow { .. }) => Err("overflow"),
            Err(EvalError::Arity { .. }) => Err("arity"),
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(source in ".{0,200}") {
            let _ = Formula::parse(&source);
        }

        #[test]
        fn parse_never_panics_on_formula_like_text(source in "[a-z0-9_. ()+*/,-]{0,100}") {
            if let Ok(formula) = Formula::parse(&source) {
                let values = vec![Decimal::ONE; formula.variables().len()];
                let _ = formula.evaluate(&values);
                let _ = formula.evaluate_explained(&values);
            }
        }

        #[test]
        fn generated_expressions_evaluate_consistently(
            expr in any_expr(),
            values in prop::collection::vec(any_decimal(), NAMES.len()),
            signs in prop::collection::vec(any::<bool>(), NAMES.len()),
            spaced in any::<bool>(),
        ) {
            let mut source = String::new();
            expr.print(if spaced { " " } else { "" }, &mut source);
            let formula = Formula::parse(&source)
                .map_err(|e| TestCaseError::fail(format!("{source}: {e}")))?;

            let vars: Vec<(&str, Decimal)> = NAMES
                .iter()
                .zip(values.iter().zip(&signs))
                .map(|(name, (v, neg))| (*name, if *neg { -*v } else { *v }))
                .collect();
            let ordered: Vec<Decimal> = formula
                .variables()
                .iter()
                .map(|name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap())
                .collect();

            let first = formula.evaluate(&ordered);
            let second = formula.evaluate(&ordered);
            prop_assert_eq!(&first, &second);
            match formula.evaluate_explained(&ordered) {
                Ok((value, steps)) => {
                    prop_assert_eq!(&first, &Ok(value));
                    prop_assert_eq!(steps.last().map(|s| s.value).unwrap_or(value), value);
                }
                Err(e) => prop_assert_eq!(&first, &Err(e)),
            }
            prop_assert_eq!(kind(&first), expr.reference(&vars));

            // The canonical text is a fixed point and means the same thing.
            let canonical = formula.render_within(Site::Node(formula.root), usize::MAX).unwrap();
            let reparsed = Formula::parse(&canonical)
                .map_err(|e| TestCaseError::fail(format!("{canonical}: {e}")))?;
            prop_assert_eq!(reparsed.render_within(Site::Node(reparsed.root), usize::MAX), Some(canonical.clone()));
            prop_assert_eq!(reparsed.variables(), formula.variables());
            prop_assert_eq!(reparsed.evaluate(&ordered), first);
        }

        #[test]
        fn literals_round_trip(value in any_decimal()) {
            let formula = Formula::parse(&value.to_string()).unwrap();
            prop_assert_eq!(formula.evaluate(&[]), Ok(value));
        }
    }
}
