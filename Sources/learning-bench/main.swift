// Parley's text classifier on a labelled file, on given folds (prints only):
//   swift run -c release learning-bench DATA.tsv FOLDS.txt
// DATA.tsv: `label<TAB>text` per line, label `spam` or `ham`; FOLDS.txt: the fold (0-based) of
// each line, so a run and scikit-learn's (scripts/bench-learning) use the same split.
// For each configuration: mean precision, recall and F1 of the positive class at threshold 0.5
// and average precision over the folds, then the time to train and cross-validate the best
// one and to score one message.
import Foundation
import Learning

struct Example {
    let text: String
    let spam: Bool
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

let arguments = CommandLine.arguments.dropFirst()
guard arguments.count == 2, let dataText = try? String(contentsOfFile: arguments[arguments.startIndex], encoding: .utf8),
      let foldText = try? String(contentsOfFile: arguments[arguments.startIndex + 1], encoding: .utf8)
else { fail("usage: learning-bench DATA.tsv FOLDS.txt") }

let examples: [Example] = dataText.split(separator: "\n", omittingEmptySubsequences: true).compactMap { line in
    guard let tab = line.firstIndex(of: "\t") else { return nil }
    return Example(text: String(line[line.index(after: tab)...]), spam: line[..<tab] == "spam")
}
let folds = foldText.split(separator: "\n").compactMap { Int($0) }
guard folds.count == examples.count, let foldCount = folds.max().map({ $0 + 1 }) else { fail("the folds file must have one fold per example") }

struct Candidate {
    let name: String
    let vectorizer: HashingVectorizer
    let configuration: LogisticRegression.Configuration
    let sublinearTF: Bool
}

func candidates() throws -> [Candidate] {
    let lbfgs = LogisticRegression.Solver.lbfgs(memory: 10)
    let words = try HashingVectorizer(wordNGrams: 1...2, bucketBits: 18)
    let wordsAndCharacters = try HashingVectorizer(wordNGrams: 1...2, characterNGrams: 2...4, bucketBits: 18)
    var list: [Candidate] = []
    for (strengthName, strength) in [("1e-5", 1e-5), ("1e-4", 1e-4)] {
        for weight in [LogisticRegression.ClassWeight.uniform, .balanced] {
            let weightName = weight == .balanced ? "balanced" : "uniform"
            list.append(Candidate(name: "words 1-2, L2 \(strengthName), \(weightName)", vectorizer: words,
                                  configuration: .init(penalty: .l2(strength), classWeight: weight, solver: lbfgs, tolerance: 1e-5),
                                  sublinearTF: true))
        }
    }
    for (strengthName, strength) in [("1e-5", 1e-5), ("1e-4", 1e-4)] {
        list.append(Candidate(name: "words 1-2 + chars 2-4, L2 \(strengthName), balanced", vectorizer: wordsAndCharacters,
                              configuration: .init(penalty: .l2(strength), classWeight: .balanced, solver: lbfgs, tolerance: 1e-5),
                              sublinearTF: true))
    }
    // The same model by the other solver (accelerated proximal gradient, 1,000 steps at most).
    list.append(Candidate(name: "words 1-2 + chars 2-4, L2 1e-5, balanced, FISTA", vectorizer: wordsAndCharacters,
                          configuration: .init(penalty: .l2(1e-5), classWeight: .balanced), sublinearTF: true))
    return list
}

struct Scores {
    var precision = 0.0, recall = 0.0, f1 = 0.0, averagePrecision = 0.0
}

let texts = examples.map(\.text)
let labels = examples.map(\.spam)
let split = try StratifiedKFold(assignments: folds)

/// Hashes every text once, fits the folds side by side, and averages each fold's figures
/// (as scikit-learn's loop does).
func crossValidate(_ candidate: Candidate) throws -> Scores {
    let counts = TextClassifier.hashedCounts(texts, vectorizer: candidate.vectorizer)
    let probabilities = try TextClassifier.crossValidatedProbabilities(
        counts: counts, labels: labels, folds: split, vectorizer: candidate.vectorizer, sublinearTF: candidate.sublinearTF,
        configuration: candidate.configuration)
    var total = Scores()
    for fold in split.folds {
        let scores = fold.validation.map { probabilities[$0] }
        let truth = fold.validation.map { labels[$0] }
        let matrix = try ConfusionMatrix(truth: truth, predicted: scores.map { $0 >= 0.5 })
        total.precision += matrix.precision
        total.recall += matrix.recall
        total.f1 += matrix.f1
        total.averagePrecision += try ClassificationMetrics.averagePrecision(scores: scores, labels: truth)
    }
    let n = Double(split.folds.count)
    return Scores(precision: total.precision / n, recall: total.recall / n, f1: total.f1 / n, averagePrecision: total.averagePrecision / n)
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

let spam = examples.filter(\.spam).count
print("data: \(examples.count) messages, \(spam) spam (\(String(format: "%.1f", 100 * Double(spam) / Double(examples.count))) %), \(foldCount) folds")
print("parley  configuration                                   precision  recall     F1  avg-prec   train+CV")
var best: (Candidate, Scores)?
for candidate in try candidates() {
    var scores = Scores()
    let time = try seconds { scores = try crossValidate(candidate) }
    let name = candidate.name.padding(toLength: 52, withPad: " ", startingAt: 0)
    print("parley  " + name + String(format: " %9.4f %7.4f %6.4f %9.4f %8.2f s", scores.precision, scores.recall, scores.f1,
                                     scores.averagePrecision, time))
    if best == nil || scores.f1 > best!.1.f1 { best = (candidate, scores) }
}
if let (candidate, _) = best {
    // Hashing, the five folds and the final fit on everything: what `parley model train` does.
    var model: TextClassifier?
    let time = try seconds {
        _ = try crossValidate(candidate)
        model = try TextClassifier.train(texts: texts, labels: labels, vectorizer: candidate.vectorizer,
                                         sublinearTF: candidate.sublinearTF, configuration: candidate.configuration)
    }
    guard let model else { fail("no model") }
    var sink = 0.0
    let rounds = 20
    let scoring = seconds { for _ in 0..<rounds { for text in texts { sink += model.predictProbability(text) } } }
    print(String(format: "parley  best: %@; 5-fold CV + final fit %.2f s (final fit: %d iterations); scoring %.1f µs per message (checksum %.3f)",
                 candidate.name as NSString, time, model.model.iterations, scoring / Double(rounds * texts.count) * 1e6, sink))
    // What the server does per message: the score and, for drift, the share of unseen features,
    // from one hashing of the text.
    let serving = seconds {
        for _ in 0..<rounds {
            for text in texts {
                let counts = model.vectorizer.transform(text)
                sink += model.probability(counts: counts) + model.unseenShare(counts: counts)
            }
        }
    }
    print(String(format: "parley  serving path (score + unseen-feature share): %.1f µs per message (checksum %.3f)",
                 serving / Double(rounds * texts.count) * 1e6, sink))
}
