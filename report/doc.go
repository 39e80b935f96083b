// Package report turns a harness.Certificate into files a person or a CI
// system reads after the run: a self-contained HTML page (scorecard and, per
// scenario, timelines with the fault windows shaded), a JUnit XML file, a
// Markdown summary and the saved histories a verdict can be recomputed from.
//
// It only reads certificates: it never runs a scenario and never judges. The
// HTML is readable offline: styles and charts (SVG drawn by gonum/plot) are
// inline, and nothing is fetched from the network, not even a font.
package report
