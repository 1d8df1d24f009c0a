import Foundation

/// The evaluation report and drift drawn as SVG pictures a browser shows as they are.
///
/// Written by hand: none of the packages Parley builds with draws charts, and four small,
/// fixed kinds of picture need no more than lines, bars and text.
enum ModelCharts {
    enum Chart: String, CaseIterable, Sendable {
        case confusion
        case precisionRecall = "precision-recall"
        case learningCurve = "learning-curve"
        case calibration
    }

    static let contentType = "image/svg+xml; charset=utf-8"

    static func draw(_ chart: Chart, of report: EvaluationReport, version: String) -> String {
        switch chart {
        case .confusion: confusion(report.confusion, version: version)
        case .precisionRecall:
            lines(title: "\(version): precision against recall (out-of-fold)", x: "recall", y: "precision",
                  series: [("precision", "#2563eb", report.precisionRecall.map { ($0.recall, $0.precision) })],
                  xRange: 0...1, yRange: 0...1)
        case .learningCurve:
            lines(title: "\(version): F1 by training size", x: "training examples", y: "F1",
                  series: [("training", "#d97706", report.learningCurve.map { ($0.trainingSize, $0.trainingF1) }),
                           ("validation", "#2563eb", report.learningCurve.map { ($0.trainingSize, $0.validationF1) })],
                  xRange: 0...max(1, report.learningCurve.map(\.trainingSize).max() ?? 1), yRange: 0...1)
        case .calibration:
            lines(title: "\(version): observed share against predicted score", x: "mean predicted score", y: "observed positive share",
                  series: [("perfectly calibrated", "#9ca3af", [(0, 0), (1, 1)]),
                           ("model", "#2563eb", report.calibration.map { ($0.meanPredicted, $0.observed) })],
                  xRange: 0...1, yRange: 0...1, dots: true)
        }
    }

    // MARK: Pictures

    private static let width = 560.0, height = 360.0
    private static let left = 64.0, right = 24.0, top = 40.0, bottom = 56.0

    private static func document(title: String, height: Double = ModelCharts.height, _ body: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" \
        role="img" aria-label="\(escape(title))" font-family="system-ui, sans-serif" font-size="12">
        <title>\(escape(title))</title>
        <rect width="100%" height="100%" fill="#ffffff"/>
        <text x="\(left)" y="22" font-size="14" font-weight="600" fill="#111827">\(escape(title))</text>
        \(body)</svg>
        """
    }

    static func confusion(_ matrix: EvaluationReport.Confusion, version: String) -> String {
        let cells: [(row: Int, column: Int, count: Int, name: String)] = [
            (0, 0, matrix.trueNegatives, "true negatives"), (0, 1, matrix.falsePositives, "false positives"),
            (1, 0, matrix.falseNegatives, "false negatives"), (1, 1, matrix.truePositives, "true positives"),
        ]
        let largest = Double(max(1, cells.map(\.count).max() ?? 1))
        let size = 120.0, x0 = 200.0, y0 = 70.0
        var body = ""
        for cell in cells {
            let x = x0 + Double(cell.column) * size, y = y0 + Double(cell.row) * size
            let shade = 0.12 + 0.78 * Double(cell.count) / largest
            body += """
                <rect x="\(x)" y="\(y)" width="\(size)" height="\(size)" fill="#2563eb" fill-opacity="\(fixed(shade))" stroke="#ffffff"/>
                <text x="\(x + size / 2)" y="\(y + size / 2)" text-anchor="middle" font-size="20" fill="\(shade > 0.5 ? "#ffffff" : "#111827")">\(cell.count)</text>
                <text x="\(x + size / 2)" y="\(y + size / 2 + 20)" text-anchor="middle" fill="\(shade > 0.5 ? "#ffffff" : "#374151")">\(cell.name)</text>

                """
        }
        for (index, name) in ["negative", "positive"].enumerated() {
            body += """
                <text x="\(x0 + Double(index) * size + size / 2)" y="\(y0 - 8)" text-anchor="middle" fill="#374151">predicted \(name)</text>
                <text x="\(x0 - 10)" y="\(y0 + Double(index) * size + size / 2)" text-anchor="end" fill="#374151">actual \(name)</text>

                """
        }
        return document(title: "\(version): confusion matrix at threshold \(fixed(ModelTrainer.threshold))", body)
    }

    static func lines(title: String, x xName: String, y yName: String, series: [(name: String, color: String, points: [(Double, Double)])],
                      xRange: ClosedRange<Double>, yRange: ClosedRange<Double>, dots: Bool = false) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xRange.lowerBound) / max(1e-12, xRange.upperBound - xRange.lowerBound) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y - yRange.lowerBound) / max(1e-12, yRange.upperBound - yRange.lowerBound) * plotHeight }
        var body = axes(x: xName, y: yName, xRange: xRange, yRange: yRange, px: px, py: py)
        for (index, line) in series.enumerated() {
            let points = line.points.filter { $0.0.isFinite && $0.1.isFinite }
            body += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\" points=\""
                + points.map { "\(fixed(px($0.0))),\(fixed(py($0.1)))" }.joined(separator: " ") + "\"/>\n"
            if dots || points.count <= 8 {
                for point in points {
                    body += "<circle cx=\"\(fixed(px(point.0)))\" cy=\"\(fixed(py(point.1)))\" r=\"3\" fill=\"\(line.color)\"/>\n"
                }
            }
            let legendY = top + 14 + Double(index) * 16
            body += """
                <rect x="\(width - right - 150)" y="\(legendY - 9)" width="10" height="10" fill="\(line.color)"/>
                <text x="\(width - right - 134)" y="\(legendY)" fill="#374151">\(escape(line.name))</text>

                """
        }
        return document(title: title, body)
    }

    private static func axes(x xName: String, y yName: String, xRange: ClosedRange<Double>, yRange: ClosedRange<Double>,
                             px: (Double) -> Double, py: (Double) -> Double) -> String {
        var body = """
            <line x1="\(left)" y1="\(py(yRange.lowerBound))" x2="\(width - right)" y2="\(py(yRange.lowerBound))" stroke="#6b7280"/>
            <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(py(yRange.lowerBound))" stroke="#6b7280"/>
            <text x="\(left + (width - left - right) / 2)" y="\(height - 14)" text-anchor="middle" fill="#374151">\(escape(xName))</text>
            <text x="16" y="\(top + (height - top - bottom) / 2)" text-anchor="middle" fill="#374151" \
            transform="rotate(-90 16 \(top + (height - top - bottom) / 2))">\(escape(yName))</text>

            """
        for step in 0...4 {
            let x = xRange.lowerBound + (xRange.upperBound - xRange.lowerBound) * Double(step) / 4
            let y = yRange.lowerBound + (yRange.upperBound - yRange.lowerBound) * Double(step) / 4
            body += """
                <text x="\(fixed(px(x)))" y="\(py(yRange.lowerBound) + 16)" text-anchor="middle" fill="#6b7280">\(tick(x))</text>
                <text x="\(left - 6)" y="\(fixed(py(y) + 4))" text-anchor="end" fill="#6b7280">\(tick(y))</text>
                <line x1="\(left)" y1="\(fixed(py(y)))" x2="\(width - right)" y2="\(fixed(py(y)))" stroke="#e5e7eb"/>

                """
        }
        return body
    }

    /// Production's drift: for each feature, the training reference's and the window's share
    /// per bin, side by side, with the feature's PSI.
    static func drift(_ report: ModelDrift.Report) -> String {
        let panelHeight = 150.0, panelTop = 48.0, gap = 42.0
        let total = panelTop + Double(report.features.count) * (panelHeight + gap)
        var body = ""
        for (index, feature) in report.features.enumerated() {
            let y0 = panelTop + Double(index) * (panelHeight + gap)
            let psi = feature.psi.map { "PSI \(fixed($0))" } ?? "PSI after \(report.minimum) messages"
            let alert = (feature.psi ?? 0) >= report.threshold
            body += "<text x=\"\(left)\" y=\"\(y0 + 4)\" font-weight=\"600\" fill=\"\(alert ? "#b91c1c" : "#111827")\">"
                + "\(escape(feature.feature)): \(psi)\(alert ? " (alert)" : "")</text>\n"
            let bins = max(1, feature.reference.count)
            let slot = (width - left - right) / Double(bins)
            let largest = max(0.01, (feature.reference + feature.current).max() ?? 0.01)
            let base = y0 + panelHeight - 20
            for bin in 0..<bins {
                let x = left + Double(bin) * slot
                for (offset, share, color) in [(0.1, feature.reference[bin], "#9ca3af"),
                                               (0.5, bin < feature.current.count ? feature.current[bin] : 0, "#2563eb")] {
                    let barHeight = share / largest * (panelHeight - 36)
                    body += "<rect x=\"\(fixed(x + slot * offset))\" y=\"\(fixed(base - barHeight))\" width=\"\(fixed(slot * 0.38))\" "
                        + "height=\"\(fixed(barHeight))\" fill=\"\(color)\"/>\n"
                }
                if bin < feature.labels.count {
                    body += "<text x=\"\(fixed(x + slot / 2))\" y=\"\(base + 14)\" text-anchor=\"middle\" font-size=\"9\" fill=\"#6b7280\">"
                        + "\(escape(feature.labels[bin]))</text>\n"
                }
            }
            body += "<line x1=\"\(left)\" y1=\"\(base)\" x2=\"\(width - right)\" y2=\"\(base)\" stroke=\"#6b7280\"/>\n"
        }
        body += """
            <rect x="\(width - right - 220)" y="\(panelTop - 20)" width="10" height="10" fill="#9ca3af"/>
            <text x="\(width - right - 205)" y="\(panelTop - 11)" fill="#374151">training</text>
            <rect x="\(width - right - 140)" y="\(panelTop - 20)" width="10" height="10" fill="#2563eb"/>
            <text x="\(width - right - 125)" y="\(panelTop - 11)" fill="#374151">last \(report.window) messages</text>

            """
        return document(title: "\(report.version): drift against training", height: total, body)
    }

    // MARK: Text

    static func escape(_ text: String) -> String { Markup.escape(text) }

    private static func fixed(_ value: Double) -> String { String(format: "%.2f", value) }

    private static func tick(_ value: Double) -> String {
        abs(value) >= 10 ? String(Int(value.rounded())) : String(format: "%.2g", value)
    }
}
