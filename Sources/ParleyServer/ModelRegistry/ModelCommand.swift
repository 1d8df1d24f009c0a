import Fluent
import Foundation
import Vapor

/// `parley model train NAME [--data FILE]` and `parley model list NAME`.
///
/// `train` imports labelled examples from FILE first, if given: one per line, `LABEL<TAB>TEXT`,
/// where LABEL is `1`, `spam` or `positive` for a message to stop and `0`, `ham` or `negative`
/// for one to let through. It then trains a new candidate version in this process (as the
/// `models.train` job does) and prints its evaluation.
struct ModelCommand: AsyncCommand {
    struct Signature: CommandSignature {
        @Argument(name: "action", help: "train or list")
        var action: String
        @Argument(name: "name", help: "The model (moderation).")
        var name: String
        @Option(name: "data", help: "A file of LABEL<TAB>TEXT lines to add before training.")
        var data: String?
    }

    var help: String { "Trains a model version from its examples (and a file of them), or lists its versions." }

    static let positiveLabels: Set<String> = ["1", "spam", "positive"]
    static let negativeLabels: Set<String> = ["0", "ham", "negative"]

    func run(using context: CommandContext, signature: Signature) async throws {
        let app = context.application
        guard let registry = app.storage[ModelRegistryKey.self] else { return }
        let service = registry.service(app.db)
        let caller = ModelRegistryService.Caller(userID: nil, isAdministrator: true)
        do {
            try ModelRegistryService.requireModel(signature.name)
            switch signature.action {
            case "list":
                for version in try await ModelVersion.versions(of: signature.name, on: app.db) {
                    let dto = try ModelVersionDTO(version, withReport: false)
                    let line: String = "\(version.name)@\(version.version)  \(version.stage)  F1 \(String(format: "%.4f", dto.metrics.f1))  examples \(version.example_count)  \(version.created_at)"
                    context.console.print(line)
                }
            case "train":
                if let path = signature.data {
                    let examples = try Self.readExamples(path)
                    let added = try await service.addExamples(examples, to: signature.name, caller: caller)
                    let line: String = "Added \(added) examples from \(path)."
                    context.console.print(line)
                }
                let model = try await registry.train(signature.name, requestedBy: nil, on: app.db)
                let report = try ModelVersionDTO.reportDecoder.decode(EvaluationReport.self, from: Data(model.report.utf8))
                let trained: String = "Trained \(model.label) (a candidate) on \(model.exampleCount) examples."
                context.console.print(trained)
                context.console.print(String(format: "%d-fold CV: precision %.4f, recall %.4f, F1 %.4f, ROC-AUC %.4f, PR-AUC %.4f",
                                             report.folds, report.precision, report.recall, report.f1, report.rocAUC, report.averagePrecision))
                let promote: String = "Promote it with PUT /v1/admin/models/\(model.name)/versions/\(model.version)/stage {\"stage\": \"production\"}."
                context.console.print(promote)
            default:
                context.console.error("Unknown action \(signature.action): use train or list.")
                throw ExitCode(2)
            }
        } catch let error as ModelRegistryError {
            context.console.error("\(error)")
            throw ExitCode(1)
        }
    }

    static func readExamples(_ path: String) throws -> [(text: String, label: Bool)] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var examples: [(text: String, label: Bool)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let tab = line.firstIndex(of: "\t") else { throw ModelRegistryError.tooFewExamples("line \(number + 1) has no tab") }
            let label = line[..<tab].lowercased()
            let body = line[line.index(after: tab)...].trimmingCharacters(in: .whitespacesAndNewlines)
            guard !body.isEmpty else { continue }
            if positiveLabels.contains(label) { examples.append((body, true)) }
            else if negativeLabels.contains(label) { examples.append((body, false)) }
            else { throw ModelRegistryError.tooFewExamples("line \(number + 1): unknown label \(label)") }
        }
        return examples
    }
}
