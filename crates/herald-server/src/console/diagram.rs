//! A flow drawn as Flow Builder draws it: Start, a box per element, a connector per way a run can go.
//!
//! Three pure steps, each testable alone:
//!
//! 1. [`Graph::of_flow`]: the compiled flow's elements and connectors ([`herald_flow::FlowGraph`]) as
//!    nodes and edges, with what each box says.
//! 2. [`layout`]: boxes and connector routes with coordinates, by a layered (Sugiyama-style) layout,
//!    top to bottom. Back edges (a loop's way back) are found by a depth-first walk from Start; every
//!    node's rank is its longest path from Start over the other edges; an edge spanning several ranks
//!    passes through a placeholder in each rank between, so it never crosses a box; the nodes of a
//!    rank are ordered by barycentre sweeps, keeping the order with the fewest crossings; x positions
//!    come from sweeps that place each node under (then over) its neighbours, the ordering and the
//!    gaps kept exactly (weighted isotonic regression); a back edge leaves its box by the right side
//!    and climbs a channel of its own, right of the boxes it passes, to the right side of its target.
//! 3. [`svg`]: the SVG, every box an `<a href="?element=NAME#element">`. Styling is classes for
//!    console.css (the CSP allows no `style=`), with presentation attributes for what must show
//!    without the stylesheet (a fault connector is red and dashed).
//!
//! Everything is deterministic: the same flow gives the same SVG, byte for byte.

use herald_flow::{ConnectorKind, ElementKindName, FlowGraph, StartPathKind};
use maud::{Markup, html};

/// What `?element=` names for the Start element (no element's API name can hold `$`).
pub(crate) const START: &str = "$Start";

// ---------------------------------------------------------------------------------------------
// The graph

/// A box of the diagram.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// The element's API name, or [`START`].
    pub name: String,
    pub kind: NodeKind,
    pub label: String,
    /// Lines under the label (Start: what triggers the flow, its entry condition).
    pub details: Vec<String>,
    /// Load warnings that concern this element: a badge on the box.
    pub warnings: usize,
    /// A Subflow element: the flow it calls, linked from the box.
    pub calls: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Start,
    Element(ElementKindName),
}

impl NodeKind {
    /// The line over the label: what Flow Builder calls the element.
    pub(crate) fn caption(self) -> &'static str {
        match self {
            NodeKind::Start => "Start",
            NodeKind::Element(kind) => kind.as_str(),
        }
    }

    /// The box's class, for its colour in console.css.
    fn class(self) -> &'static str {
        match self {
            NodeKind::Start => "start",
            NodeKind::Element(kind) => match kind {
                ElementKindName::Action => "action",
                ElementKindName::CreateRecords => "create-records",
                ElementKindName::Assignment => "assignment",
                ElementKindName::Decision => "decision",
                ElementKindName::GetRecords => "get-records",
                ElementKindName::Loop => "loop",
                ElementKindName::UpdateRecords => "update-records",
                ElementKindName::DeleteRecords => "delete-records",
                ElementKindName::Subflow => "subflow",
                ElementKindName::Wait => "wait",
            },
        }
    }
}

/// A connector: from one box to another.
#[derive(Clone, Debug)]
pub(crate) struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    pub label: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EdgeKind {
    /// From Start: the immediate path, a scheduled path, the asynchronous path.
    Path,
    Next,
    Fault,
    Outcome,
    DefaultOutcome,
    ForEach,
    AfterLast,
}

impl EdgeKind {
    pub(crate) fn class(self) -> &'static str {
        match self {
            EdgeKind::Path => "path",
            EdgeKind::Next => "next",
            EdgeKind::Fault => "fault",
            EdgeKind::Outcome => "outcome",
            EdgeKind::DefaultOutcome => "default-outcome",
            EdgeKind::ForEach => "for-each",
            EdgeKind::AfterLast => "after-last",
        }
    }
}

/// What the diagram shows: node 0 is Start.
#[derive(Clone, Debug)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// The diagram of a flow: `start` (what its Start box says), then a box per element (in file
    /// order), with `warnings(name)` badges; the paths that leave Start, then each element's
    /// connectors.
    pub(crate) fn of_flow(flow: &FlowGraph, start: Node, warnings: impl Fn(&str) -> usize) -> Graph {
        let mut nodes = vec![start];
        nodes.extend(flow.elements.iter().map(|element| Node {
            name: element.name.clone(),
            kind: NodeKind::Element(element.kind),
            label: element.label.clone(),
            details: Vec::new(),
            warnings: warnings(&element.name),
            calls: element.calls.clone(),
        }));
        let mut edges = Vec::new();
        // One path is just "the flow"; with others, each is labelled as Flow Builder labels them.
        let several = flow.paths.len() > 1;
        for path in &flow.paths {
            let label = match &path.kind {
                StartPathKind::Immediate => "Run Immediately".to_string(),
                StartPathKind::Scheduled { label, .. } => label.clone(),
                StartPathKind::Asynchronous => "Run Asynchronously".to_string(),
            };
            edges.push(Edge {
                from: 0,
                to: path.target + 1,
                kind: EdgeKind::Path,
                label: several.then_some(label),
            });
        }
        for (index, element) in flow.elements.iter().enumerate() {
            for connector in &element.connectors {
                let (kind, label) = match &connector.kind {
                    ConnectorKind::Next => (EdgeKind::Next, None),
                    ConnectorKind::Fault => (EdgeKind::Fault, Some("Fault".to_string())),
                    ConnectorKind::Outcome { label, .. } => (EdgeKind::Outcome, Some(label.clone())),
                    ConnectorKind::DefaultOutcome => {
                        (EdgeKind::DefaultOutcome, Some("Default Outcome".into()))
                    }
                    ConnectorKind::ForEach => (EdgeKind::ForEach, Some("For Each".into())),
                    ConnectorKind::AfterLast => (EdgeKind::AfterLast, Some("After Last".into())),
                };
                edges.push(Edge { from: index + 1, to: connector.target + 1, kind, label });
            }
        }
        Graph { nodes, edges }
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point {
    pub x: f64,
    pub y: f64,
}

fn pt(x: f64, y: f64) -> Point {
    Point { x: x.round(), y: y.round() }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub(crate) fn right(&self) -> f64 {
        self.x + self.w
    }

    pub(crate) fn bottom(&self) -> f64 {
        self.y + self.h
    }

    /// Whether the two share more than an edge.
    pub(crate) fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right() && other.x < self.right() && self.y < other.bottom() && other.y < self.bottom()
    }

    /// Whether `point` is inside, not on the border.
    #[cfg(test)]
    pub(crate) fn holds(&self, point: Point) -> bool {
        point.x > self.x && point.x < self.right() && point.y > self.y && point.y < self.bottom()
    }

    fn grown(&self, by: f64) -> Rect {
        Rect { x: self.x - by, y: self.y - by, w: self.w + 2.0 * by, h: self.h + 2.0 * by }
    }

    fn moved(&self, dx: f64, dy: f64) -> Rect {
        Rect { x: self.x + dx, y: self.y + dy, ..*self }
    }
}

/// A piece of a connector's path, from where the previous one ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Segment {
    Line(Point),
    /// A cubic Bézier: two control points, then the end.
    Curve(Point, Point, Point),
}

impl Segment {
    pub(crate) fn end(&self) -> Point {
        match self {
            Segment::Line(end) | Segment::Curve(_, _, end) => *end,
        }
    }

    /// The point at `t` (0 to 1) along the segment that starts at `from`.
    pub(crate) fn at(&self, from: Point, t: f64) -> Point {
        match self {
            Segment::Line(to) => Point { x: from.x + (to.x - from.x) * t, y: from.y + (to.y - from.y) * t },
            Segment::Curve(c1, c2, to) => {
                let u = 1.0 - t;
                let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
                Point {
                    x: a * from.x + b * c1.x + c * c2.x + d * to.x,
                    y: a * from.y + b * c1.y + c * c2.y + d * to.y,
                }
            }
        }
    }

    fn points(&self) -> Vec<Point> {
        match self {
            Segment::Line(end) => vec![*end],
            Segment::Curve(c1, c2, end) => vec![*c1, *c2, *end],
        }
    }
}

/// Where one connector runs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Route {
    pub start: Point,
    pub segments: Vec<Segment>,
    /// Where its label sits, when it has one.
    pub label: Option<Rect>,
    /// A back edge (a loop's way back), routed around the right side.
    pub back: bool,
}

impl Route {
    #[cfg(test)]
    pub(crate) fn end(&self) -> Point {
        self.segments.last().map_or(self.start, Segment::end)
    }

    /// Points along the whole route, `per_segment` on each piece.
    #[cfg(test)]
    pub(crate) fn samples(&self, per_segment: usize) -> Vec<Point> {
        let mut from = self.start;
        let mut found = vec![from];
        for segment in &self.segments {
            for step in 1..=per_segment {
                found.push(segment.at(from, step as f64 / per_segment as f64));
            }
            from = segment.end();
        }
        found
    }

    /// The SVG path data.
    fn d(&self) -> String {
        let mut d = format!("M{} {}", num(self.start.x), num(self.start.y));
        for segment in &self.segments {
            match segment {
                Segment::Line(p) => d.push_str(&format!(" L{} {}", num(p.x), num(p.y))),
                Segment::Curve(a, b, p) => d.push_str(&format!(
                    " C{} {} {} {} {} {}",
                    num(a.x),
                    num(a.y),
                    num(b.x),
                    num(b.y),
                    num(p.x),
                    num(p.y)
                )),
            }
        }
        d
    }
}

/// The diagram with coordinates: a box per node and a route per edge, in the graph's order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Layout {
    pub width: f64,
    pub height: f64,
    pub boxes: Vec<Rect>,
    pub routes: Vec<Route>,
}

// ---------------------------------------------------------------------------------------------
// Layout

const MARGIN: f64 = 24.0;
const ELEMENT_W: f64 = 232.0;
const ELEMENT_H: f64 = 64.0;
const START_W: f64 = 272.0;
/// The Start box's height without detail lines, and each line's.
const START_H: f64 = 60.0;
const LINE_H: f64 = 16.0;
/// Between ranks: room for the connectors to turn and for their labels.
const RANK_GAP: f64 = 76.0;
/// Between two boxes of a rank.
const NODE_GAP: f64 = 48.0;
/// Between a box and a connector passing by, or a back edge's channel and its box.
const CHANNEL_GAP: f64 = 24.0;
/// Between two connectors passing by side by side.
const LANE_GAP: f64 = 16.0;
/// Connectors leaving (or reaching) one side of a box are this far apart at most.
const PORT_SPACING: f64 = 40.0;
/// Edge labels: an estimate of the text's width (11px system-ui), and the pill around it.
const LABEL_CHAR_W: f64 = 6.4;
const LABEL_PAD: f64 = 14.0;
const LABEL_H: f64 = 18.0;
/// What a gap grows by for each labelled connector across it past the second.
const LABEL_ROW: f64 = 14.0;
/// Labels at most this long; a longer one ends in `…` (its connector's title keeps it whole).
const LABEL_CHARS: usize = 28;
/// Ordering sweeps (each a pass down or up) and x-placement sweeps.
const ORDER_SWEEPS: usize = 12;
const PLACE_SWEEPS: usize = 10;

fn node_size(node: &Node) -> (f64, f64) {
    match node.kind {
        NodeKind::Start => (START_W, START_H + LINE_H * node.details.len() as f64),
        NodeKind::Element(_) => (ELEMENT_W, ELEMENT_H),
    }
}

/// A node of the layered graph: a box, or a placeholder a connector passes through.
#[derive(Clone, Debug)]
struct Slot {
    rank: usize,
    width: f64,
    real: bool,
}

/// The connectors that go back up: found by a depth-first walk from Start, following connectors in
/// order (then from any element Start does not reach); an edge to an element still on the walk's
/// path is a back edge.
fn back_edges(graph: &Graph) -> Vec<bool> {
    let n = graph.nodes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (index, edge) in graph.edges.iter().enumerate() {
        out[edge.from].push(index);
    }
    let mut back = vec![false; graph.edges.len()];
    // 0: not seen, 1: on the path, 2: done.
    let mut state = vec![0u8; n];
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some((node, next)) = stack.pop() {
            if let Some(&edge) = out[node].get(next) {
                stack.push((node, next + 1));
                let target = graph.edges[edge].to;
                match state[target] {
                    0 => {
                        state[target] = 1;
                        stack.push((target, 0));
                    }
                    1 => back[edge] = true,
                    _ => {}
                }
            } else {
                state[node] = 2;
            }
        }
    }
    back
}

/// Each node's rank: its longest path from Start over the edges that are not back edges. An element
/// Start does not reach starts one rank below Start.
fn ranks(graph: &Graph, back: &[bool]) -> Vec<usize> {
    let n = graph.nodes.len();
    let mut incoming = vec![0usize; n];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (index, edge) in graph.edges.iter().enumerate() {
        if !back[index] {
            incoming[edge.to] += 1;
            out[edge.from].push(edge.to);
        }
    }
    let mut rank: Vec<usize> = (0..n).map(|node| usize::from(node != 0)).collect();
    let mut ready: std::collections::VecDeque<usize> = (0..n).filter(|&node| incoming[node] == 0).collect();
    while let Some(node) = ready.pop_front() {
        for &next in &out[node] {
            rank[next] = rank[next].max(rank[node] + 1);
            incoming[next] -= 1;
            if incoming[next] == 0 {
                ready.push_back(next);
            }
        }
    }
    rank
}

/// The boxes and routes of `graph`.
pub(crate) fn layout(graph: &Graph) -> Layout {
    let n = graph.nodes.len();
    let sizes: Vec<(f64, f64)> = graph.nodes.iter().map(node_size).collect();
    let back = back_edges(graph);
    let rank = ranks(graph, &back);
    let max_rank = rank.iter().copied().max().unwrap_or(0);

    // The layered graph: boxes first, then placeholders.
    let mut slots: Vec<Slot> =
        (0..n).map(|i| Slot { rank: rank[i], width: sizes[i].0, real: true }).collect();
    let dummy = |slots: &mut Vec<Slot>, rank: usize| {
        slots.push(Slot { rank, width: 0.0, real: false });
        slots.len() - 1
    };
    // Each edge's slots from its source to its target; for a back edge: source, its side slot,
    // the slots it climbs through, the target's side slot, target.
    let mut chains: Vec<Vec<usize>> = Vec::new();
    // Links between adjacent ranks, (upper, lower): for ordering, and for placing.
    let mut order_links: Vec<(usize, usize)> = Vec::new();
    let mut place_links: Vec<(usize, usize)> = Vec::new();
    // Placeholders that stand right of a box (a back edge's way out of and into it): (slot, box,
    // leaving).
    let mut sides: Vec<(usize, usize, bool)> = Vec::new();
    for (index, edge) in graph.edges.iter().enumerate() {
        let (u, v) = (edge.from, edge.to);
        if !back[index] {
            let mut chain = vec![u];
            for r in rank[u] + 1..rank[v] {
                chain.push(dummy(&mut slots, r));
            }
            chain.push(v);
            for pair in chain.windows(2) {
                order_links.push((pair[0], pair[1]));
                place_links.push((pair[0], pair[1]));
            }
            chains.push(chain);
        } else if u == v {
            let side = dummy(&mut slots, rank[u]);
            sides.push((side, u, true));
            chains.push(vec![u, side, u]);
        } else {
            let out_side = dummy(&mut slots, rank[u]);
            let climb: Vec<usize> = (rank[v] + 1..rank[u]).rev().map(|r| dummy(&mut slots, r)).collect();
            let in_side = dummy(&mut slots, rank[v]);
            sides.push((out_side, u, true));
            sides.push((in_side, v, false));
            // Ordered as if it ran down from the target to the source, so it stays beside them.
            let mut down = vec![v];
            down.extend(climb.iter().rev());
            down.push(u);
            for pair in down.windows(2) {
                order_links.push((pair[0], pair[1]));
            }
            let mut up = vec![in_side];
            up.extend(climb.iter().rev());
            up.push(out_side);
            for pair in up.windows(2) {
                place_links.push((pair[0], pair[1]));
            }
            let mut chain = vec![u, out_side];
            chain.extend(&climb);
            chain.extend([in_side, v]);
            chains.push(chain);
        }
    }
    let side_of: Vec<bool> = {
        let mut side_of = vec![false; slots.len()];
        for (slot, _, _) in &sides {
            side_of[*slot] = true;
        }
        side_of
    };

    let layers = order(&slots, &order_links, &side_of, max_rank);
    // A back edge leaves its box, and reaches its target, on the side where its lane climbs: first
    // placed with every lane on the right, then both side placeholders moved to the side where the
    // lane mostly runs (a loop body drawn right of its way back gets its way back on the left).
    let mut left = vec![false; slots.len()];
    let beside = |left: &[bool]| {
        let mut layers = layers.clone();
        for layer in layers.iter_mut() {
            let mut sided = Vec::with_capacity(layer.len());
            for &slot in layer.iter() {
                // Nearest the box first: the ways out, then the ways in.
                let group = |on_left: bool| {
                    let mut group: Vec<usize> = Vec::new();
                    for leaving in [true, false] {
                        group.extend(
                            sides
                                .iter()
                                .filter(|(s, a, o)| *a == slot && *o == leaving && left[*s] == on_left)
                                .map(|(s, _, _)| *s),
                        );
                    }
                    group
                };
                sided.extend(group(true).into_iter().rev());
                sided.push(slot);
                sided.extend(group(false));
            }
            *layer = sided;
        }
        layers
    };
    let first = place(&slots, &beside(&left), &place_links);
    for (e, chain) in chains.iter().enumerate() {
        if !back[e] || chain.len() < 5 {
            continue;
        }
        // Both ends on the side where the lane mostly climbs, against the middle of its two boxes.
        let (u, v) = (chain[0], chain[chain.len() - 1]);
        let climb = &chain[2..chain.len() - 2];
        let lane = climb.iter().map(|&slot| first[slot]).sum::<f64>() / climb.len() as f64;
        let on_left = lane < (first[u] + first[v]) / 2.0;
        left[chain[1]] = on_left;
        left[chain[chain.len() - 2]] = on_left;
    }
    let layers = beside(&left);
    let x = place(&slots, &layers, &place_links);

    // Ranks' bands, top to bottom.
    let mut band_top = vec![0.0; max_rank + 1];
    let mut band_h = vec![0.0f64; max_rank + 1];
    for node in 0..n {
        band_h[rank[node]] = band_h[rank[node]].max(sizes[node].1);
    }
    // A gap grows with the labelled connectors that cross it first (a decision of many outcomes).
    let mut labelled = vec![0usize; max_rank + 1];
    for (e, edge) in graph.edges.iter().enumerate() {
        if edge.label.is_some() && !back[e] {
            labelled[rank[edge.from]] += 1;
        }
    }
    let mut y = 0.0;
    for r in 0..=max_rank {
        band_top[r] = y;
        y += band_h[r] + RANK_GAP + LABEL_ROW * labelled[r].saturating_sub(2).min(4) as f64;
    }
    let band_bottom = |r: usize| band_top[r] + band_h[r];
    let boxes: Vec<Rect> = (0..n)
        .map(|node| {
            let (w, h) = sizes[node];
            let r = rank[node];
            Rect { x: (x[node] - w / 2.0).round(), y: (band_top[r] + (band_h[r] - h) / 2.0).round(), w, h }
        })
        .collect();

    // Ports: where each connector leaves and reaches its boxes.
    let mut out_port = vec![0.0; graph.edges.len()];
    let mut in_port = vec![0.0; graph.edges.len()];
    let mut side_out = vec![0.0; graph.edges.len()];
    let mut side_in = vec![0.0; graph.edges.len()];
    for node in 0..n {
        let b = &boxes[node];
        let spread = |count: usize, index: usize, length: f64| {
            let spacing = PORT_SPACING.min(length * 0.8 / count as f64);
            (index as f64 - (count as f64 - 1.0) / 2.0) * spacing
        };
        // Forward connectors leave the bottom in the order of where they go, and reach the top in
        // the order of where they come from.
        let mut leaving: Vec<usize> =
            (0..graph.edges.len()).filter(|&e| !back[e] && graph.edges[e].from == node).collect();
        leaving.sort_by(|&a, &b| x[chains[a][1]].total_cmp(&x[chains[b][1]]).then(a.cmp(&b)));
        for (i, &e) in leaving.iter().enumerate() {
            out_port[e] = (b.x + b.w / 2.0 + spread(leaving.len(), i, b.w)).round();
        }
        let mut arriving: Vec<usize> =
            (0..graph.edges.len()).filter(|&e| !back[e] && graph.edges[e].to == node).collect();
        let before_last = |e: usize| chains[e][chains[e].len() - 2];
        arriving.sort_by(|&a, &b| x[before_last(a)].total_cmp(&x[before_last(b)]).then(a.cmp(&b)));
        for (i, &e) in arriving.iter().enumerate() {
            in_port[e] = (b.x + b.w / 2.0 + spread(arriving.len(), i, b.w)).round();
        }
        // Back edges use a side: on each, ways out on top (the nearest lane highest), ways in
        // below (the farthest lane highest), so that none crosses another beside the box.
        let distance = |slot: usize| (x[slot] - x[node]).abs();
        for on_left in [false, true] {
            let mut outs: Vec<usize> = (0..graph.edges.len())
                .filter(|&e| {
                    back[e]
                        && graph.edges[e].from == node
                        && graph.edges[e].to != node
                        && left[chains[e][1]] == on_left
                })
                .collect();
            outs.sort_by(|&a, &b| distance(chains[a][1]).total_cmp(&distance(chains[b][1])).then(a.cmp(&b)));
            let in_side = |e: usize| chains[e][chains[e].len() - 2];
            let mut ins: Vec<usize> = (0..graph.edges.len())
                .filter(|&e| {
                    back[e]
                        && graph.edges[e].to == node
                        && graph.edges[e].from != node
                        && left[in_side(e)] == on_left
                })
                .collect();
            ins.sort_by(|&a, &b| distance(in_side(b)).total_cmp(&distance(in_side(a))).then(a.cmp(&b)));
            let count = outs.len() + ins.len();
            for (i, &e) in outs.iter().enumerate() {
                side_out[e] = (b.y + b.h / 2.0 + spread(count, i, b.h)).round();
            }
            for (i, &e) in ins.iter().enumerate() {
                side_in[e] = (b.y + b.h / 2.0 + spread(count, outs.len() + i, b.h)).round();
            }
        }
    }

    // Routes: straight down through a box's own band, curves across the gaps between bands.
    let across = |from: Point, to: Point| {
        if from.x == to.x {
            Segment::Line(to)
        } else {
            let middle = (from.y + to.y) / 2.0;
            Segment::Curve(pt(from.x, middle), pt(to.x, middle), to)
        }
    };
    let mut routes = Vec::new();
    // Each route's crossings of the gaps between ranks: where its label goes.
    let mut crossing: Vec<Vec<usize>> = Vec::new();
    for (e, edge) in graph.edges.iter().enumerate() {
        let chain = &chains[e];
        let (source, target) = (&boxes[edge.from], &boxes[edge.to]);
        let mut segments = Vec::new();
        let mut crossings = Vec::new();
        let start;
        if !back[e] {
            start = pt(out_port[e], source.bottom());
            let mut here = start;
            let below = band_bottom(rank[edge.from]);
            if here.y < below {
                here = pt(here.x, below);
                segments.push(Segment::Line(here));
            }
            for (j, &slot) in chain.iter().enumerate().skip(1) {
                let r = slots[slot].rank;
                let last = j == chain.len() - 1;
                let to_x = if last { in_port[e] } else { x[slot].round() };
                let arrive = pt(to_x, band_top[r]);
                crossings.push(segments.len());
                segments.push(across(here, arrive));
                here = arrive;
                let down_to = if last { target.y } else { band_bottom(r) };
                if here.y < down_to {
                    here = pt(here.x, down_to);
                    segments.push(Segment::Line(here));
                }
            }
        } else if edge.from == edge.to {
            let lane = x[chain[1]].round();
            start = pt(source.right(), source.y + source.h / 3.0);
            segments.push(Segment::Line(pt(lane, start.y)));
            segments.push(Segment::Line(pt(lane, source.y + source.h * 2.0 / 3.0)));
            segments.push(Segment::Line(pt(source.right(), source.y + source.h * 2.0 / 3.0)));
        } else {
            let leave = if left[chain[1]] { source.x } else { source.right() };
            start = pt(leave, side_out[e]);
            let lane = x[chain[1]].round();
            segments.push(Segment::Line(pt(lane, start.y)));
            let mut here = pt(lane, band_top[rank[edge.from]]);
            segments.push(Segment::Line(here));
            for &slot in &chain[2..chain.len() - 1] {
                let r = slots[slot].rank;
                let arrive = pt(x[slot].round(), band_bottom(r));
                crossings.push(segments.len());
                segments.push(across(here, arrive));
                here = arrive;
                let is_last_lane = slot == chain[chain.len() - 2];
                let up_to = if is_last_lane { side_in[e] } else { band_top[r] };
                here = pt(here.x, up_to);
                segments.push(Segment::Line(here));
            }
            let reach = if left[chain[chain.len() - 2]] { target.x } else { target.right() };
            segments.push(Segment::Line(pt(reach, side_in[e])));
        }
        routes.push(Route { start, segments, label: None, back: back[e] });
        crossing.push(crossings);
    }

    // Labels: where the connector crosses a gap, where no box or other label is.
    let mut placed: Vec<Rect> = Vec::new();
    for (e, edge) in graph.edges.iter().enumerate() {
        let Some(text) = &edge.label else { continue };
        let w = (label_text(text).chars().count() as f64 * LABEL_CHAR_W + LABEL_PAD).round();
        let route = &routes[e];
        // Along a crossing of a gap (no box there), the first one first, else along the longest
        // straight run (a connector from a box to itself); on the connector, then beside it.
        let mut from = route.start;
        let mut runs: Vec<(Point, Segment)> = Vec::new();
        for segment in &route.segments {
            runs.push((from, *segment));
            from = segment.end();
        }
        let length = |(from, segment): &(Point, Segment)| {
            let end = segment.end();
            (end.x - from.x).abs() + (end.y - from.y).abs()
        };
        let chosen_runs: Vec<(Point, Segment)> = if crossing[e].is_empty() {
            runs.iter()
                .copied()
                .reduce(|best, run| if length(&run) > length(&best) { run } else { best })
                .into_iter()
                .collect()
        } else {
            crossing[e].iter().filter_map(|&index| runs.get(index).copied()).collect()
        };
        let mut candidates: Vec<Point> = Vec::new();
        for (from, segment) in chosen_runs {
            for shift in [0.0, w / 2.0 + 6.0, -(w / 2.0 + 6.0)] {
                for t in [0.5, 0.35, 0.65, 0.2, 0.8] {
                    let p = segment.at(from, t);
                    candidates.push(Point { x: p.x + shift, y: p.y });
                }
            }
        }
        let rect_at =
            |p: Point| Rect { x: (p.x - w / 2.0).round(), y: (p.y - LABEL_H / 2.0).round(), w, h: LABEL_H };
        let free = |rect: &Rect| {
            !boxes.iter().any(|b| b.grown(2.0).overlaps(rect))
                && !placed.iter().any(|l| l.grown(2.0).overlaps(rect))
        };
        let chosen = candidates
            .iter()
            .map(|p| rect_at(*p))
            .find(|r| free(r))
            .or_else(|| candidates.first().map(|p| rect_at(*p)));
        if let Some(rect) = chosen {
            placed.push(rect);
            routes[e].label = Some(rect);
        }
    }

    // Everything moved to start at the margin.
    let mut min = Point { x: f64::MAX, y: f64::MAX };
    let mut max = Point { x: f64::MIN, y: f64::MIN };
    let mut grow = |p: Point| {
        min = Point { x: min.x.min(p.x), y: min.y.min(p.y) };
        max = Point { x: max.x.max(p.x), y: max.y.max(p.y) };
    };
    for b in boxes.iter().chain(routes.iter().filter_map(|r| r.label.as_ref())) {
        grow(Point { x: b.x, y: b.y });
        grow(Point { x: b.right(), y: b.bottom() });
    }
    for route in &routes {
        grow(route.start);
        for segment in &route.segments {
            segment.points().into_iter().for_each(&mut grow);
        }
    }
    if boxes.is_empty() {
        min = Point { x: 0.0, y: 0.0 };
        max = min;
    }
    let (dx, dy) = (MARGIN - min.x, MARGIN - min.y);
    let shift = |p: Point| Point { x: p.x + dx, y: p.y + dy };
    let boxes: Vec<Rect> = boxes.iter().map(|b| b.moved(dx, dy)).collect();
    let routes = routes
        .into_iter()
        .map(|route| Route {
            start: shift(route.start),
            segments: route
                .segments
                .iter()
                .map(|segment| match segment {
                    Segment::Line(p) => Segment::Line(shift(*p)),
                    Segment::Curve(a, b, p) => Segment::Curve(shift(*a), shift(*b), shift(*p)),
                })
                .collect(),
            label: route.label.map(|l| l.moved(dx, dy)),
            back: route.back,
        })
        .collect();
    Layout { width: max.x - min.x + 2.0 * MARGIN, height: max.y - min.y + 2.0 * MARGIN, boxes, routes }
}

/// The order of the slots of each rank: first as a depth-first walk down the links meets them
/// (so a decision's outcomes stand left to right in their order), then improved by barycentre
/// sweeps, down and up, keeping the order with the fewest crossings. Side placeholders are left out
/// (they are put beside their box afterwards).
fn order(slots: &[Slot], links: &[(usize, usize)], side: &[bool], max_rank: usize) -> Vec<Vec<usize>> {
    let count = slots.len();
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); count];
    for &(a, b) in links {
        down[a].push(b);
        up[b].push(a);
    }
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); max_rank + 1];
    let mut seen = vec![false; count];
    let mut roots: Vec<usize> = (0..count).filter(|&s| slots[s].real && slots[s].rank == 0).collect();
    roots.extend((0..count).filter(|&s| !side[s]));
    for root in roots {
        if seen[root] || side[root] {
            continue;
        }
        let mut stack = vec![root];
        while let Some(slot) = stack.pop() {
            if seen[slot] {
                continue;
            }
            seen[slot] = true;
            layers[slots[slot].rank].push(slot);
            for &next in down[slot].iter().rev() {
                if !seen[next] {
                    stack.push(next);
                }
            }
        }
    }
    let mut best = layers.clone();
    let mut fewest = crossings(&layers, links, count);
    let mut position = vec![0.0; count];
    for sweep in 0..ORDER_SWEEPS {
        let going_down = sweep % 2 == 0;
        let ranks: Vec<usize> =
            if going_down { (1..=max_rank).collect() } else { (0..max_rank).rev().collect() };
        for r in ranks {
            for layer in &layers {
                for (i, &slot) in layer.iter().enumerate() {
                    position[slot] = i as f64;
                }
            }
            let neighbours = if going_down { &up } else { &down };
            let mut keyed: Vec<(f64, usize, usize)> = layers[r]
                .iter()
                .enumerate()
                .map(|(i, &slot)| {
                    let around = &neighbours[slot];
                    let key = if around.is_empty() {
                        i as f64
                    } else {
                        around.iter().map(|&s| position[s]).sum::<f64>() / around.len() as f64
                    };
                    (key, i, slot)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[r] = keyed.into_iter().map(|(_, _, slot)| slot).collect();
        }
        let found = crossings(&layers, links, count);
        if found < fewest {
            fewest = found;
            best = layers.clone();
        }
    }
    best
}

/// How many pairs of links cross between adjacent ranks.
fn crossings(layers: &[Vec<usize>], links: &[(usize, usize)], count: usize) -> usize {
    let mut position = vec![0usize; count];
    let mut rank_of = vec![0usize; count];
    for (r, layer) in layers.iter().enumerate() {
        for (i, &slot) in layer.iter().enumerate() {
            position[slot] = i;
            rank_of[slot] = r;
        }
    }
    let mut by_rank: Vec<Vec<(usize, usize)>> = vec![Vec::new(); layers.len()];
    for &(a, b) in links {
        by_rank[rank_of[a]].push((position[a], position[b]));
    }
    let mut total = 0;
    for pairs in &by_rank {
        for (i, a) in pairs.iter().enumerate() {
            for b in &pairs[i + 1..] {
                if (a.0 < b.0 && a.1 > b.1) || (a.0 > b.0 && a.1 < b.1) {
                    total += 1;
                }
            }
        }
    }
    total
}

/// The x of each slot's centre: sweeps that move each slot towards the mean of its neighbours
/// above (then below), each rank solved exactly for the least squared move that keeps its order
/// and gaps.
fn place(slots: &[Slot], layers: &[Vec<usize>], links: &[(usize, usize)]) -> Vec<f64> {
    let count = slots.len();
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); count];
    for &(a, b) in links {
        down[a].push(b);
        up[b].push(a);
    }
    let gap = |a: usize, b: usize| {
        let between = match (slots[a].real, slots[b].real) {
            (true, true) => NODE_GAP,
            (false, false) => LANE_GAP,
            _ => CHANNEL_GAP,
        };
        slots[a].width / 2.0 + slots[b].width / 2.0 + between
    };
    let mut x = vec![0.0; count];
    for layer in layers {
        let mut cursor = 0.0;
        for (i, &slot) in layer.iter().enumerate() {
            if i > 0 {
                cursor += gap(layer[i - 1], slot);
            }
            x[slot] = cursor;
        }
    }
    let max_rank = layers.len().saturating_sub(1);
    for sweep in 0..PLACE_SWEEPS + 2 {
        // Down, up, ..., then twice towards both sides at once.
        let (ranks, both): (Vec<usize>, bool) = if sweep >= PLACE_SWEEPS {
            ((0..=max_rank).collect(), true)
        } else if sweep % 2 == 0 {
            ((1..=max_rank).collect(), false)
        } else {
            ((0..max_rank).rev().collect(), false)
        };
        for r in ranks {
            let layer = &layers[r];
            let wanted: Vec<f64> = layer
                .iter()
                .map(|&slot| {
                    let around: Vec<usize> = if both {
                        up[slot].iter().chain(&down[slot]).copied().collect()
                    } else if sweep % 2 == 0 {
                        up[slot].clone()
                    } else {
                        down[slot].clone()
                    };
                    if around.is_empty() {
                        x[slot]
                    } else {
                        around.iter().map(|&s| x[s]).sum::<f64>() / around.len() as f64
                    }
                })
                .collect();
            // Placeholders weigh more: long connectors stay straight.
            let weights: Vec<f64> =
                layer.iter().map(|&slot| if slots[slot].real { 1.0 } else { 2.0 }).collect();
            let gaps: Vec<f64> =
                (0..layer.len()).map(|i| if i == 0 { 0.0 } else { gap(layer[i - 1], layer[i]) }).collect();
            for (slot, value) in layer.iter().zip(keep_apart(&wanted, &weights, &gaps)) {
                x[*slot] = value;
            }
        }
    }
    x
}

/// The positions closest to `wanted` (least weighted squares) in which each is at least `gaps[i]`
/// right of the one before: pool-adjacent-violators on the positions less their gaps so far.
fn keep_apart(wanted: &[f64], weights: &[f64], gaps: &[f64]) -> Vec<f64> {
    let mut offset = Vec::with_capacity(wanted.len());
    let mut sum = 0.0;
    for gap in gaps {
        sum += gap;
        offset.push(sum);
    }
    // Blocks of (weight, weighted sum, length), their means non-decreasing.
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for i in 0..wanted.len() {
        blocks.push((weights[i], weights[i] * (wanted[i] - offset[i]), 1));
        while blocks.len() > 1 {
            let (w2, s2, n2) = blocks[blocks.len() - 1];
            let (w1, s1, n1) = blocks[blocks.len() - 2];
            if s1 / w1 <= s2 / w2 {
                break;
            }
            blocks.pop();
            *blocks.last_mut().expect("two blocks") = (w1 + w2, s1 + s2, n1 + n2);
        }
    }
    let mut placed = Vec::with_capacity(wanted.len());
    for (w, s, length) in blocks {
        for _ in 0..length {
            placed.push(s / w + offset[placed.len()]);
        }
    }
    placed
}

// ---------------------------------------------------------------------------------------------
// SVG

fn num(value: f64) -> String {
    format!("{}", value.round() as i64)
}

/// A label as drawn on a connector: at most [`LABEL_CHARS`] characters.
fn label_text(text: &str) -> String {
    clip(text, LABEL_CHARS)
}

/// `text` in at most `chars` characters, ending in `…` when cut.
fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut clipped: String = text.chars().take(chars.saturating_sub(1)).collect();
    clipped = clipped.trim_end().to_string();
    clipped.push('…');
    clipped
}

/// `text` in at most `lines` lines of at most `width` characters, broken between words; the last
/// line ends in `…` when the text does not fit.
fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let fits = current.is_empty() || current.chars().count() + 1 + word.chars().count() <= width;
        if fits {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        } else {
            found.push(std::mem::take(&mut current));
            current.push_str(word);
        }
    }
    if !current.is_empty() {
        found.push(current);
    }
    if found.len() > lines {
        let rest = found[lines - 1..].join(" ");
        found.truncate(lines - 1);
        found.push(rest);
    }
    found.into_iter().map(|line| clip(&line, width)).collect()
}

/// The link a box is: the page itself with `?element=NAME`, scrolled to the panel.
pub(crate) fn element_href(name: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("element", name).finish();
    format!("?{query}#element")
}

/// The page of another flow (a subflow's).
pub(crate) fn flow_href(name: &str) -> String {
    super::pages::flow_link(name)
}

/// The white glyph in a box's icon, by kind, centred on (`cx`, `cy`).
fn glyph(kind: NodeKind, cx: f64, cy: f64) -> Markup {
    let p = |dx: f64, dy: f64| format!("{} {}", num(cx + dx), num(cy + dy));
    let d = match kind {
        NodeKind::Start => format!("M{} L{} L{} Z", p(-5.0, -7.0), p(7.0, 0.0), p(-5.0, 7.0)),
        NodeKind::Element(kind) => match kind {
            ElementKindName::Action => {
                format!(
                    "M{} L{} L{} L{} L{} L{} Z",
                    p(2.0, -9.0),
                    p(-6.0, 2.0),
                    p(0.0, 2.0),
                    p(-2.0, 9.0),
                    p(6.0, -2.0),
                    p(0.0, -2.0)
                )
            }
            ElementKindName::Assignment => {
                format!("M{} L{} M{} L{}", p(-7.0, -3.0), p(7.0, -3.0), p(-7.0, 3.0), p(7.0, 3.0))
            }
            ElementKindName::Decision => {
                format!("M{} L{} L{} L{} Z", p(0.0, -8.0), p(8.0, 0.0), p(0.0, 8.0), p(-8.0, 0.0))
            }
            ElementKindName::Loop => format!(
                "M{} A7 7 0 1 1 {} M{} L{} L{}",
                p(-6.0, 4.0),
                p(-4.0, -6.0),
                p(-8.0, -9.0),
                p(-4.0, -6.0),
                p(-8.0, -3.0)
            ),
            ElementKindName::Subflow => {
                format!("M{} h8 v8 h-8 Z M{} h8 v8 h-8 Z", p(-8.0, -8.0), p(0.0, 0.0))
            }
            ElementKindName::Wait => format!(
                "M{} A8 8 0 1 1 {} A8 8 0 1 1 {} M{} L{} L{}",
                p(-8.0, 0.0),
                p(8.0, 0.0),
                p(-8.0, 0.0),
                p(0.0, -5.0),
                p(0.0, 0.0),
                p(4.0, 3.0)
            ),
            ElementKindName::GetRecords
            | ElementKindName::CreateRecords
            | ElementKindName::UpdateRecords
            | ElementKindName::DeleteRecords => format!(
                "M{} A7 3 0 1 0 {} A7 3 0 1 0 {} M{} V{} A7 3 0 0 0 {} V{}",
                p(-7.0, -5.0),
                p(7.0, -5.0),
                p(-7.0, -5.0),
                p(-7.0, -5.0),
                num(cy + 5.0),
                p(7.0, 5.0),
                num(cy - 5.0)
            ),
        },
    };
    html! { path.glyph d=(d) fill="none" stroke="#fff" stroke-width="2" stroke-linejoin="round" stroke-linecap="round" {} }
}

/// The diagram as inline SVG: connectors, their labels, then the boxes (links to their
/// configuration), the `selected` one highlighted.
pub(crate) fn svg(graph: &Graph, layout: &Layout, selected: Option<&str>, title: &str) -> Markup {
    let name_of = |index: usize| graph.nodes[index].name.as_str();
    html! {
        svg.flow-diagram xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {} {}", num(layout.width), num(layout.height)))
            width=(num(layout.width)) height=(num(layout.height)) role="img" aria-label=(title) {
            title { (title) }
            defs {
                @for (id, class) in [("arrow", "arrowhead"), ("arrow-fault", "arrowhead fault")] {
                    marker id=(id) viewBox="0 0 10 10" refX="10" refY="5" markerWidth="10" markerHeight="10"
                        markerUnits="userSpaceOnUse" orient="auto" {
                        path class=(class) d="M0 0 L10 5 L0 10 Z"
                            fill=(if id == "arrow" { "#5b6270" } else { "#b3261e" }) {}
                    }
                }
            }
            g.edges {
                @for (edge, route) in graph.edges.iter().zip(&layout.routes) {
                    @let fault = edge.kind == EdgeKind::Fault;
                    g class=(format!("edge {}{}", edge.kind.class(), if route.back { " back" } else { "" }))
                        data-from=(name_of(edge.from)) data-to=(name_of(edge.to)) {
                        title {
                            (graph.nodes[edge.from].label) " → " (graph.nodes[edge.to].label)
                            @if let Some(label) = &edge.label { " (" (label) ")" }
                        }
                        @if fault {
                            path d=(route.d()) fill="none" stroke="#b3261e" stroke-width="1.5" stroke-dasharray="6 4"
                                marker-end="url(#arrow-fault)" {}
                        } @else {
                            path d=(route.d()) fill="none" stroke="#5b6270" stroke-width="1.5" marker-end="url(#arrow)" {}
                        }
                    }
                }
            }
            g.edge-labels {
                @for (edge, route) in graph.edges.iter().zip(&layout.routes) {
                    @if let (Some(label), Some(at)) = (&edge.label, &route.label) {
                        g class=(format!("edge-label {}", edge.kind.class())) {
                            rect x=(num(at.x)) y=(num(at.y)) width=(num(at.w)) height=(num(at.h)) rx="9" fill="#fff" {}
                            text x=(num(at.x + at.w / 2.0)) y=(num(at.y + 13.0)) text-anchor="middle" { (label_text(label)) }
                        }
                    }
                }
            }
            g.nodes {
                @for (node, b) in graph.nodes.iter().zip(&layout.boxes) {
                    @let is_selected = selected == Some(node.name.as_str());
                    a.node-link href=(element_href(&node.name)) {
                        g class=(format!("node {}{}{}", node.kind.class(), if is_selected { " selected" } else { "" },
                                if node.warnings > 0 { " warned" } else { "" }))
                            data-element=(node.name) {
                            title {
                                (node.kind.caption()) ": " (node.label)
                                @if node.kind != NodeKind::Start { " (" (node.name) ")" }
                                @for line in &node.details { "\n" (line) }
                                @if node.warnings > 0 { "\n" (node.warnings) " load warning" @if node.warnings > 1 { "s" } }
                            }
                            rect.box x=(num(b.x)) y=(num(b.y)) width=(num(b.w)) height=(num(b.h)) rx="8" fill="#fff" stroke="#c9ced6" {}
                            rect.icon x=(num(b.x + 10.0)) y=(num(b.y + 14.0)) width="34" height="34" rx="7" fill="#5b6270" {}
                            (glyph(node.kind, b.x + 27.0, b.y + 31.0))
                            text.caption x=(num(b.x + 54.0)) y=(num(b.y + 20.0)) { (node.kind.caption()) }
                            @let (label_chars, label_lines) = if node.kind == NodeKind::Start { (30, 1) } else { (21, 2) };
                            @for (i, line) in wrap(&node.label, label_chars, label_lines).iter().enumerate() {
                                text.label x=(num(b.x + 54.0)) y=(num(b.y + 38.0 + 16.0 * i as f64)) { (line) }
                            }
                            @for (i, line) in node.details.iter().enumerate() {
                                text.detail x=(num(b.x + 54.0)) y=(num(b.y + 56.0 + LINE_H * i as f64)) { (clip(line, 33)) }
                            }
                            @if node.warnings > 0 {
                                g.badge {
                                    rect x=(num(b.right() - 44.0)) y=(num(b.y - 9.0)) width="40" height="18" rx="9" fill="#8a5a00" {}
                                    path d=(format!("M{} {} l5 -9 l5 9 Z M{} {} v-3 M{} {} v0.5",
                                            num(b.right() - 37.0), num(b.y + 4.0), num(b.right() - 32.0), num(b.y - 1.0),
                                            num(b.right() - 32.0), num(b.y + 2.0)))
                                        fill="none" stroke="#fff" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round" {}
                                    text x=(num(b.right() - 16.0)) y=(num(b.y + 4.0)) text-anchor="middle" fill="#fff" { (node.warnings) }
                                }
                            }
                        }
                    }
                    @if let Some(called) = &node.calls {
                        a.subflow-link href=(flow_href(called)) {
                            title { "Open the flow " (called) }
                            text x=(num(b.right() - 10.0)) y=(num(b.y + 20.0)) text-anchor="end" { "open ↗" }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(name: &str, kind: ElementKindName) -> Node {
        Node {
            name: name.into(),
            kind: NodeKind::Element(kind),
            label: name.replace('_', " "),
            details: Vec::new(),
            warnings: 0,
            calls: None,
        }
    }

    fn start(details: usize) -> Node {
        Node {
            name: START.into(),
            kind: NodeKind::Start,
            label: "Lead".into(),
            details: (0..details).map(|i| format!("detail {i}")).collect(),
            warnings: 0,
            calls: None,
        }
    }

    fn edge(from: usize, to: usize, kind: EdgeKind) -> Edge {
        let label = match kind {
            EdgeKind::Next | EdgeKind::Path => None,
            other => Some(other.class().replace('-', " ")),
        };
        Edge { from, to, kind, label }
    }

    /// examples/kixie-welcome-sms: an action with a fault path, an update, a scheduled path to a
    /// decision whose outcome sends again, with the same fault path.
    fn kixie() -> Graph {
        use ElementKindName::*;
        Graph {
            nodes: vec![
                start(2),
                element("Send_SMS", Action),
                element("Mark_Lead_Texted", UpdateRecords),
                element("Log_SMS_Failure", CreateRecords),
                element("Still_Not_Contacted", Decision),
                element("Send_Follow_Up_SMS", Action),
            ],
            edges: vec![
                Edge { label: Some("Run Immediately".into()), ..edge(0, 1, EdgeKind::Path) },
                Edge { label: Some("Follow up after 1 hour".into()), ..edge(0, 4, EdgeKind::Path) },
                edge(1, 2, EdgeKind::Next),
                edge(1, 3, EdgeKind::Fault),
                edge(4, 5, EdgeKind::Outcome),
                edge(5, 3, EdgeKind::Fault),
            ],
        }
    }

    /// examples/8x8-bulk: a loop over records, a decision whose default goes back to the loop, and
    /// an assignment that goes back too.
    fn bulk() -> Graph {
        use ElementKindName::*;
        Graph {
            nodes: vec![
                start(2),
                element("Get_Members", GetRecords),
                element("Each_Member", Loop),
                element("Add_Message", Assignment),
                element("Batch_Full", Decision),
                element("Send_Batch", Action),
                element("Clear_Batch", Assignment),
                element("Any_Left", Decision),
                element("Send_Last_Batch", Action),
                element("Log_Failure", CreateRecords),
            ],
            edges: vec![
                edge(0, 1, EdgeKind::Path),
                edge(1, 2, EdgeKind::Next),
                edge(1, 9, EdgeKind::Fault),
                edge(2, 3, EdgeKind::ForEach),
                edge(2, 7, EdgeKind::AfterLast),
                edge(3, 4, EdgeKind::Next),
                edge(4, 5, EdgeKind::Outcome),
                edge(4, 2, EdgeKind::DefaultOutcome),
                edge(5, 6, EdgeKind::Next),
                edge(5, 9, EdgeKind::Fault),
                edge(6, 2, EdgeKind::Next),
                edge(7, 8, EdgeKind::Outcome),
                edge(8, 9, EdgeKind::Fault),
            ],
        }
    }

    /// A flow of `count` elements that uses every shape: runs of assignments, decisions of three
    /// outcomes and a default, loops with their way back, actions with a fault path to one shared
    /// handler, and connectors that skip ranks.
    fn big(count: usize) -> Graph {
        use ElementKindName::*;
        let kinds = [Assignment, Decision, Action, Loop, GetRecords, Subflow, UpdateRecords, Wait];
        let mut nodes = vec![start(1)];
        for i in 0..count {
            nodes.push(element(&format!("Element_{i}"), kinds[i % kinds.len()]));
        }
        let handler = nodes.len();
        nodes.push(element("Handle_Fault", CreateRecords));
        let mut edges = vec![edge(0, 1, EdgeKind::Path)];
        let mut open_loops: Vec<usize> = Vec::new();
        for (i, node) in nodes.iter().enumerate().take(count + 1).skip(1) {
            let next = if i < count { Some(i + 1) } else { None };
            match node.kind {
                NodeKind::Element(Decision) => {
                    for (k, target) in [i + 1, i + 2, i + 3].into_iter().enumerate() {
                        if target <= count {
                            let label = format!("Outcome number {k}");
                            edges.push(Edge { label: Some(label), ..edge(i, target, EdgeKind::Outcome) });
                        }
                    }
                    if i + 4 <= count {
                        edges.push(edge(i, i + 4, EdgeKind::DefaultOutcome));
                    }
                }
                NodeKind::Element(Loop) => {
                    if let Some(next) = next {
                        edges.push(edge(i, next, EdgeKind::ForEach));
                    }
                    if i + 5 <= count {
                        edges.push(edge(i, i + 5, EdgeKind::AfterLast));
                    }
                    open_loops.push(i);
                }
                NodeKind::Element(kind) => {
                    if let Some(next) = next {
                        edges.push(edge(i, next, EdgeKind::Next));
                    }
                    if matches!(kind, Action | GetRecords | Subflow | UpdateRecords) {
                        edges.push(edge(i, handler, EdgeKind::Fault));
                    }
                    // The element two after a loop goes back to it.
                    if let Some(&looped) = open_loops.last()
                        && i == looped + 2
                    {
                        edges.push(edge(i, looped, EdgeKind::Next));
                        open_loops.pop();
                    }
                }
                NodeKind::Start => {}
            }
        }
        Graph { nodes, edges }
    }

    /// The geometry every diagram must have: boxes apart, every connector drawn from its source's
    /// border to its target's, through no box, and labels on no box.
    fn check(graph: &Graph) -> Layout {
        let layout = layout(graph);
        assert_eq!(layout.boxes.len(), graph.nodes.len());
        assert_eq!(layout.routes.len(), graph.edges.len(), "every connector is routed");
        for (i, a) in layout.boxes.iter().enumerate() {
            assert!(a.x >= 0.0 && a.y >= 0.0 && a.right() <= layout.width && a.bottom() <= layout.height);
            for (j, b) in layout.boxes.iter().enumerate().skip(i + 1) {
                assert!(
                    !a.grown(NODE_GAP / 4.0).overlaps(b),
                    "{} and {} overlap: {a:?} {b:?}",
                    graph.nodes[i].name,
                    graph.nodes[j].name
                );
            }
        }
        let on_border = |p: Point, r: &Rect| {
            let inside =
                p.x >= r.x - 0.5 && p.x <= r.right() + 0.5 && p.y >= r.y - 0.5 && p.y <= r.bottom() + 0.5;
            inside && !r.grown(-0.5).holds(p)
        };
        for (edge, route) in graph.edges.iter().zip(&layout.routes) {
            let (from, to) = (&layout.boxes[edge.from], &layout.boxes[edge.to]);
            let name = format!("{} -> {}", graph.nodes[edge.from].name, graph.nodes[edge.to].name);
            assert!(on_border(route.start, from), "{name} starts on its source: {route:?} {from:?}");
            assert!(on_border(route.end(), to), "{name} ends on its target: {route:?} {to:?}");
            for point in route.samples(24) {
                for (k, b) in layout.boxes.iter().enumerate() {
                    assert!(!b.holds(point), "{name} runs through {}: {point:?}", graph.nodes[k].name);
                }
                assert!(
                    point.x >= 0.0 && point.y >= 0.0 && point.x <= layout.width && point.y <= layout.height
                );
            }
            assert_eq!(route.label.is_some(), edge.label.is_some(), "{name}: a label where it has one");
            if let Some(label) = route.label {
                for (k, b) in layout.boxes.iter().enumerate() {
                    assert!(!label.overlaps(b), "{name}'s label covers {}", graph.nodes[k].name);
                }
            }
        }
        layout
    }

    #[test]
    fn boxes_never_overlap_and_every_connector_runs_between_its_boxes() {
        check(&kixie());
        check(&bulk());
    }

    #[test]
    fn a_flow_of_forty_elements_stays_apart_and_every_connector_avoids_the_boxes() {
        for count in [1, 2, 9, 31, 40] {
            check(&big(count));
        }
    }

    #[test]
    fn ranks_follow_the_longest_path_from_start_and_ignore_the_way_back() {
        let graph = bulk();
        let back = back_edges(&graph);
        let backs: Vec<(usize, usize)> =
            graph.edges.iter().zip(&back).filter(|(_, b)| **b).map(|(e, _)| (e.from, e.to)).collect();
        assert_eq!(backs, [(4, 2), (6, 2)], "the default outcome and Clear_Batch go back to the loop");
        let rank = ranks(&graph, &back);
        assert_eq!(rank, [0, 1, 2, 3, 4, 5, 6, 3, 4, 6]);
        let layout = check(&graph);
        // Each rank is a band below the one before.
        let y = |node: usize| layout.boxes[node].y;
        assert!(y(0) < y(1) && y(1) < y(2) && y(2) < y(3) && y(3) < y(4) && y(5) < y(9) && y(6) == y(9));
    }

    #[test]
    fn a_back_edge_goes_around_a_side_of_the_boxes_it_passes() {
        let graph = bulk();
        let layout = check(&graph);
        for (edge, route) in graph.edges.iter().zip(&layout.routes) {
            if !route.back {
                continue;
            }
            let (from, to) = (&layout.boxes[edge.from], &layout.boxes[edge.to]);
            let xs: Vec<f64> = route.samples(8).iter().map(|p| p.x).collect();
            let (west, east) =
                (xs.iter().copied().fold(f64::MAX, f64::min), xs.iter().copied().fold(f64::MIN, f64::max));
            if route.start.x == from.right() {
                assert!(east > from.right(), "its lane is right of its source");
            } else {
                assert_eq!(route.start.x, from.x, "leaves by a side");
                assert!(west < from.x, "its lane is left of its source");
            }
            assert!(route.end().x == to.right() || route.end().x == to.x, "arrives on a side");
            let entering_from_the_left = route.end().x == to.x;
            let last = route.segments.len() - 2;
            let lane = route.segments[last].end().x;
            assert!(if entering_from_the_left { lane < to.x } else { lane > to.right() });
        }
        assert_eq!(layout.routes.iter().filter(|r| r.back).count(), 2);
    }

    #[test]
    fn a_box_that_leads_back_to_itself_gets_a_loop_beside_it() {
        use ElementKindName::*;
        let graph = Graph {
            nodes: vec![start(0), element("Again", Wait), element("Done", Assignment)],
            edges: vec![edge(0, 1, EdgeKind::Path), edge(1, 1, EdgeKind::Next), edge(1, 2, EdgeKind::Fault)],
        };
        let layout = check(&graph);
        assert!(layout.routes[1].back);
    }

    #[test]
    fn decision_outcomes_stand_left_to_right_in_their_order() {
        use ElementKindName::*;
        let graph = Graph {
            nodes: vec![
                start(0),
                element("Which", Decision),
                element("First", Assignment),
                element("Second", Assignment),
                element("Third", Assignment),
            ],
            edges: vec![
                edge(0, 1, EdgeKind::Path),
                edge(1, 2, EdgeKind::Outcome),
                edge(1, 3, EdgeKind::Outcome),
                edge(1, 4, EdgeKind::DefaultOutcome),
            ],
        };
        let layout = check(&graph);
        let x = |node: usize| layout.boxes[node].x;
        assert!(x(2) < x(3) && x(3) < x(4), "{:?}", layout.boxes);
        // The decision stands over its middle outcome.
        let centre = |node: usize| layout.boxes[node].x + layout.boxes[node].w / 2.0;
        assert!((centre(1) - centre(3)).abs() < 1.0, "{:?}", layout.boxes);
    }

    #[test]
    fn the_same_flow_draws_the_same_svg() {
        for graph in [kixie(), bulk(), big(33)] {
            let first = svg(&graph, &layout(&graph), Some("Element_3"), "flow").into_string();
            let again = svg(&graph, &layout(&graph.clone()), Some("Element_3"), "flow").into_string();
            assert_eq!(first, again);
        }
    }

    #[test]
    fn the_svg_has_a_link_per_box_and_a_path_per_connector_faults_marked() {
        let graph = kixie();
        let drawn = svg(&graph, &layout(&graph), Some("Send_SMS"), "Lead Welcome SMS").into_string();
        assert_eq!(drawn.matches("<a class=\"node-link\"").count(), graph.nodes.len());
        assert_eq!(drawn.matches("<g class=\"edge ").count(), graph.edges.len());
        assert_eq!(drawn.matches("<g class=\"edge fault\"").count(), 2);
        assert_eq!(drawn.matches("stroke-dasharray=\"6 4\"").count(), 2, "only fault connectors are dashed");
        assert!(drawn.contains(r##"href="?element=Send_SMS#element""##), "{drawn}");
        assert!(drawn.contains(r##"href="?element=%24Start#element""##), "{drawn}");
        assert!(drawn.contains(r#"class="node action selected" data-element="Send_SMS""#), "{drawn}");
        assert_eq!(drawn.matches(" selected\"").count(), 1);
        for label in ["Run Immediately", "Follow up after 1 hour", "outcome"] {
            assert!(drawn.contains(&format!(">{label}</text>")), "{label}: {drawn}");
        }
        assert!(!drawn.contains("style="), "no inline style under the CSP");
        // Every SVG element is closed: an HTML parser nests an unclosed one inside the next.
        for tag in ["path", "rect", "text", "circle"] {
            assert_eq!(
                drawn.matches(&format!("<{tag} ")).count(),
                drawn.matches(&format!("</{tag}>")).count(),
                "{tag}"
            );
        }
    }

    #[test]
    fn a_subflow_box_links_to_the_called_flow_and_a_warned_box_wears_a_badge() {
        let mut graph = kixie();
        graph.nodes[1].calls = Some("Send_SMS_8x8".into());
        graph.nodes[1].warnings = 2;
        let drawn = svg(&graph, &layout(&graph), None, "flow").into_string();
        assert!(drawn.contains(r#"<a class="subflow-link" href="/console/flows/Send_SMS_8x8">"#), "{drawn}");
        assert!(drawn.contains("<g class=\"badge\">"), "{drawn}");
        assert!(drawn.contains(">2</text>"), "{drawn}");
        assert!(drawn.contains("2 load warnings"), "{drawn}");
    }

    #[test]
    fn long_labels_wrap_to_two_lines_and_end_in_an_ellipsis() {
        assert_eq!(wrap("Build and Add Button Component", 21, 2), ["Build and Add Button", "Component"]);
        assert_eq!(wrap("Send SMS", 21, 2), ["Send SMS"]);
        assert_eq!(
            wrap("a very long label that goes on and on and on", 21, 2),
            ["a very long label", "that goes on and on…"]
        );
        assert_eq!(wrap("Supercalifragilisticexpialidocious", 10, 2), ["Supercali…"]);
        assert_eq!(clip("Default Outcome", 28), "Default Outcome");
    }

    #[test]
    fn keeping_apart_moves_the_least_and_keeps_the_gaps() {
        let placed = keep_apart(&[0.0, 0.0, 100.0], &[1.0, 1.0, 1.0], &[0.0, 10.0, 10.0]);
        assert_eq!(placed, [-5.0, 5.0, 100.0]);
        let placed = keep_apart(&[50.0, 0.0], &[1.0, 3.0], &[0.0, 20.0]);
        assert_eq!(placed, [-2.5, 17.5], "pooled: (50 - 3 * 20) / 4");
    }
}
