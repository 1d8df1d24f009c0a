import Foundation

/// Binary logistic regression on sparse features.
///
/// Fitting minimises the class-weighted mean log-loss plus a penalty on the weights
/// (never on the intercept). The default solver is full-batch accelerated proximal
/// gradient descent (FISTA with adaptive restart); its step size comes from a bound on
/// the loss's curvature, so there is no learning-rate schedule to tune and no randomness:
/// the same data and configuration always give bit-identical weights. The mini-batch
/// solver shuffles with a seed and is bit-identical for that seed. Either way the L1
/// proximal step sets weights to exactly zero, and training touches only the feature
/// columns that occur in the data.
public struct LogisticRegression: Codable, Sendable, Equatable {
    /// The weight penalty and its strength (a multiplier on the penalty added to the mean loss).
    public enum Penalty: Codable, Sendable, Equatable {
        /// No penalty.
        case none
        /// `strength / 2 · ‖w‖²`.
        case l2(Double)
        /// `strength · ‖w‖₁`.
        case l1(Double)
    }

    /// How examples of each class are weighted in the loss.
    public enum ClassWeight: Codable, Sendable, Equatable {
        /// Every example weighs 1.
        case uniform
        /// scikit-learn's `balanced`: `n / (2 · count(class))`.
        case balanced
        /// Explicit weights for the negative and positive class.
        case custom(negative: Double, positive: Double)
    }

    /// How the objective is minimised.
    public enum Solver: Codable, Sendable, Equatable {
        /// Accelerated proximal gradient on the whole training set; seedless and
        /// deterministic, stopping at ``Configuration/tolerance``.
        case fullBatch
        /// Proximal gradient on shuffled mini-batches with a step that decays as
        /// `1/√epoch`; deterministic for a seed. ``Configuration/maxIterations`` is ignored.
        case miniBatch(batchSize: Int, epochs: Int, seed: UInt64)
        /// Limited-memory BFGS (the last `memory` steps approximate the curvature) with a
        /// backtracking line search; seedless and deterministic. It needs a smooth objective,
        /// so an L1 penalty is refused. It stops when no component of the gradient exceeds
        /// ``Configuration/tolerance``, usually in a tenth of the full-batch solver's steps
        /// on weakly regularised text models.
        case lbfgs(memory: Int)
    }

    /// Fitting settings.
    public struct Configuration: Codable, Sendable, Equatable {
        /// The minimiser.
        public var solver: Solver
        /// The penalty.
        public var penalty: Penalty
        /// Class weighting.
        public var classWeight: ClassWeight
        /// The most gradient steps to take.
        public var maxIterations: Int
        /// Fitting stops when no parameter moves by more than this in one step.
        public var tolerance: Double

        /// Creates a configuration.
        public init(
            penalty: Penalty = .l2(1e-4),
            classWeight: ClassWeight = .uniform,
            solver: Solver = .fullBatch,
            maxIterations: Int = 1000,
            tolerance: Double = 1e-7
        ) {
            self.solver = solver
            self.penalty = penalty
            self.classWeight = classWeight
            self.maxIterations = maxIterations
            self.tolerance = tolerance
        }
    }

    /// One weight per feature position.
    public private(set) var weights: [Double]
    /// The unpenalised bias.
    public private(set) var intercept: Double
    /// The settings used to fit.
    public let configuration: Configuration
    /// The number of gradient steps taken.
    public let iterations: Int

    /// Creates a model from known parameters.
    public init(weights: [Double], intercept: Double, configuration: Configuration = Configuration(), iterations: Int = 0) {
        self.weights = weights
        self.intercept = intercept
        self.configuration = configuration
        self.iterations = iterations
    }

    /// The feature dimension.
    public var dimension: Int { weights.count }

    /// Fits a model.
    /// - Parameters:
    ///   - examples: feature vectors, all of one dimension.
    ///   - labels: `true` for the positive class.
    /// - Throws: ``LearningError`` for empty or mismatched input, a single class, or
    ///   invalid settings.
    public static func fit(_ examples: [SparseVector], labels: [Bool], configuration: Configuration = Configuration()) throws -> LogisticRegression {
        guard let first = examples.first else { throw LearningError.emptyInput("examples") }
        guard labels.count == examples.count else {
            throw LearningError.lengthMismatch(expected: examples.count, actual: labels.count)
        }
        guard configuration.maxIterations >= 1 else { throw LearningError.invalidArgument("maxIterations must be at least 1") }
        guard configuration.tolerance >= 0 else { throw LearningError.invalidArgument("tolerance must not be negative") }
        let dimension = first.dimension
        for example in examples where example.dimension != dimension {
            throw LearningError.dimensionMismatch(expected: dimension, actual: example.dimension)
        }
        let positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard positives > 0, positives < labels.count else { throw LearningError.singleClass }

        var l1 = 0.0
        var l2 = 0.0
        switch configuration.penalty {
        case .none: break
        case .l1(let s):
            guard s >= 0, s.isFinite else { throw LearningError.invalidArgument("penalty strength must be finite and non-negative") }
            l1 = s
        case .l2(let s):
            guard s >= 0, s.isFinite else { throw LearningError.invalidArgument("penalty strength must be finite and non-negative") }
            l2 = s
        }
        let n = Double(labels.count)
        let (negativeWeight, positiveWeight): (Double, Double)
        switch configuration.classWeight {
        case .uniform: (negativeWeight, positiveWeight) = (1, 1)
        case .balanced: (negativeWeight, positiveWeight) = (n / (2 * (n - Double(positives))), n / (2 * Double(positives)))
        case .custom(let negative, let positive):
            guard negative > 0, positive > 0, negative.isFinite, positive.isFinite else {
                throw LearningError.invalidArgument("class weights must be positive and finite")
            }
            (negativeWeight, positiveWeight) = (negative, positive)
        }

        // Work only on the columns that occur, so each step costs O(nonzeros), not O(dimension).
        var columnOf = [Int32](repeating: -1, count: dimension)
        var activeColumns: [Int] = []
        var offsets: [Int] = [0]
        var columns: [Int32] = []
        var values: [Double] = []
        for example in examples {
            for (k, index) in example.indices.enumerated() {
                if columnOf[index] < 0 {
                    columnOf[index] = Int32(activeColumns.count)
                    activeColumns.append(index)
                }
                columns.append(columnOf[index])
                values.append(example.values[k])
            }
            offsets.append(columns.count)
        }
        let m = activeColumns.count
        let totalWeight = labels.reduce(0.0) { $0 + ($1 ? positiveWeight : negativeWeight) }
        // r_i = s_i / S so the loss is a weighted mean.
        let rowScale = labels.map { ($0 ? positiveWeight : negativeWeight) / totalWeight }
        let targets = labels.map { $0 ? 1.0 : 0.0 }
        // The log-loss Hessian is at most 0.25 · Σ r_i x̃ x̃ᵀ, whose largest eigenvalue is at most its trace.
        var trace = 0.0
        for i in examples.indices { trace += rowScale[i] * (examples[i].squaredNorm + 1) }
        let lipschitz = 0.25 * trace + l2
        let step = 1 / lipschitz

        if case .lbfgs(let memory) = configuration.solver {
            guard memory >= 1 else { throw LearningError.invalidArgument("memory must be at least 1") }
            guard l1 == 0 else { throw LearningError.invalidArgument("the L-BFGS solver needs a smooth penalty: use l2 or none") }
            let data = CompressedRows(offsets: offsets, columns: columns, values: values, rowScale: rowScale, targets: targets)
            let (w, b, steps) = lbfgs(data, columnCount: m, l2: l2, memory: memory, maxIterations: configuration.maxIterations,
                                      tolerance: configuration.tolerance)
            var weights = [Double](repeating: 0, count: dimension)
            for (j, index) in activeColumns.enumerated() { weights[index] = w[j] }
            return LogisticRegression(weights: weights, intercept: b, configuration: configuration, iterations: steps)
        }

        if case .miniBatch(let batchSize, let epochs, let seed) = configuration.solver {
            guard batchSize >= 1, epochs >= 1 else { throw LearningError.invalidArgument("batchSize and epochs must be at least 1") }
            let data = CompressedRows(offsets: offsets, columns: columns, values: values, rowScale: rowScale, targets: targets)
            let (w, b) = miniBatch(data, columnCount: m, l1: l1, l2: l2, batchSize: batchSize, epochs: epochs, seed: seed)
            var weights = [Double](repeating: 0, count: dimension)
            for (j, index) in activeColumns.enumerated() { weights[index] = w[j] }
            return LogisticRegression(weights: weights, intercept: b, configuration: configuration, iterations: epochs)
        }

        var w = [Double](repeating: 0, count: m)
        var b = 0.0
        var yw = w
        var yb = b
        var t = 1.0
        var gradient = [Double](repeating: 0, count: m)
        var nextW = [Double](repeating: 0, count: m)
        var iteration = 0
        while iteration < configuration.maxIterations {
            iteration += 1
            for j in 0..<m { gradient[j] = l2 * yw[j] }
            var gradientB = 0.0
            for i in 0..<offsets.count - 1 {
                var z = yb
                for k in offsets[i]..<offsets[i + 1] { z += yw[Int(columns[k])] * values[k] }
                let residual = rowScale[i] * (sigmoid(z) - targets[i])
                gradientB += residual
                for k in offsets[i]..<offsets[i + 1] { gradient[Int(columns[k])] += residual * values[k] }
            }
            let threshold = step * l1
            var maxChange = 0.0
            var restartSignal = 0.0
            for j in 0..<m {
                var v = yw[j] - step * gradient[j]
                if threshold > 0 { v = v > threshold ? v - threshold : (v < -threshold ? v + threshold : 0) }
                nextW[j] = v
                maxChange = max(maxChange, abs(v - w[j]))
                restartSignal += (yw[j] - v) * (v - w[j])
            }
            let nextB = yb - step * gradientB
            maxChange = max(maxChange, abs(nextB - b))
            restartSignal += (yb - nextB) * (nextB - b)

            if restartSignal > 0 {
                // Momentum is pointing uphill; restarting keeps FISTA monotone in practice.
                t = 1
                for j in 0..<m { yw[j] = nextW[j] }
                yb = nextB
            } else {
                let nextT = (1 + (1 + 4 * t * t).squareRoot()) / 2
                let momentum = (t - 1) / nextT
                for j in 0..<m { yw[j] = nextW[j] + momentum * (nextW[j] - w[j]) }
                yb = nextB + momentum * (nextB - b)
                t = nextT
            }
            swap(&w, &nextW)
            b = nextB
            if maxChange <= configuration.tolerance { break }
        }

        var weights = [Double](repeating: 0, count: dimension)
        for (j, index) in activeColumns.enumerated() { weights[index] = w[j] }
        return LogisticRegression(weights: weights, intercept: b, configuration: configuration, iterations: iteration)
    }

    /// Training rows in compressed sparse row form over the active columns.
    private struct CompressedRows {
        let offsets: [Int]
        let columns: [Int32]
        let values: [Double]
        /// Each row's share of the weighted mean loss.
        let rowScale: [Double]
        let targets: [Double]
    }

    /// The weighted mean log-loss plus `l2 / 2 · ‖w‖²` at `(w, b)` (packed as `x`, the
    /// intercept last), with its gradient written into `gradient`.
    private static func objective(_ data: CompressedRows, _ x: [Double], l2: Double, gradient: inout [Double]) -> Double {
        let m = x.count - 1
        let b = x[m]
        var loss = 0.0
        var gradientB = 0.0
        x.withUnsafeBufferPointer { x in
            gradient.withUnsafeMutableBufferPointer { g in
                data.columns.withUnsafeBufferPointer { columns in
                    data.values.withUnsafeBufferPointer { values in
                        for j in 0..<m { g[j] = l2 * x[j] }
                        for i in 0..<data.targets.count {
                            let range = data.offsets[i]..<data.offsets[i + 1]
                            var z = b
                            for k in range { z += x[Int(columns[k])] * values[k] }
                            // log(1 + e^z) − y·z, computed without overflow.
                            let softplus = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))
                            loss += data.rowScale[i] * (softplus - data.targets[i] * z)
                            let residual = data.rowScale[i] * (sigmoid(z) - data.targets[i])
                            gradientB += residual
                            for k in range { g[Int(columns[k])] += residual * values[k] }
                        }
                        var penalty = 0.0
                        for j in 0..<m { penalty += x[j] * x[j] }
                        loss += l2 / 2 * penalty
                    }
                }
            }
        }
        gradient[m] = gradientB
        return loss
    }

    private static func lbfgs(
        _ data: CompressedRows, columnCount m: Int, l2: Double, memory: Int, maxIterations: Int, tolerance: Double
    ) -> ([Double], Double, Int) {
        let size = m + 1
        var x = [Double](repeating: 0, count: size)
        var gradient = [Double](repeating: 0, count: size)
        var loss = objective(data, x, l2: l2, gradient: &gradient)
        // The last `memory` steps s = Δx and gradient changes y = Δg, oldest first.
        var steps: [[Double]] = []
        var changes: [[Double]] = []
        var curvatures: [Double] = []  // 1 / (yᵀs)
        var direction = [Double](repeating: 0, count: size)
        var alpha = [Double](repeating: 0, count: memory)
        var candidate = x
        var candidateGradient = gradient
        var iteration = 0
        func largest(_ v: [Double]) -> Double { v.reduce(0) { max($0, abs($1)) } }
        func dot(_ a: [Double], _ b: [Double]) -> Double {
            var sum = 0.0
            for j in 0..<a.count { sum += a[j] * b[j] }
            return sum
        }
        while iteration < maxIterations, largest(gradient) > tolerance {
            iteration += 1
            // Two-loop recursion: direction = −H·g.
            for j in 0..<size { direction[j] = -gradient[j] }
            for k in stride(from: steps.count - 1, through: 0, by: -1) {
                alpha[k] = curvatures[k] * dot(steps[k], direction)
                for j in 0..<size { direction[j] -= alpha[k] * changes[k][j] }
            }
            if let s = steps.last, let y = changes.last {
                let scale = dot(s, y) / dot(y, y)
                for j in 0..<size { direction[j] *= scale }
            } else {
                // First step: a unit move along the steepest descent.
                let norm = dot(gradient, gradient).squareRoot()
                for j in 0..<size { direction[j] /= max(norm, 1) }
            }
            for k in 0..<steps.count {
                let beta = curvatures[k] * dot(changes[k], direction)
                for j in 0..<size { direction[j] += (alpha[k] - beta) * steps[k][j] }
            }
            var slope = dot(gradient, direction)
            if slope >= 0 {
                // Not a descent direction (rounding): forget the history and go downhill.
                steps.removeAll(); changes.removeAll(); curvatures.removeAll()
                for j in 0..<size { direction[j] = -gradient[j] }
                slope = -dot(gradient, gradient)
            }
            // Backtracking until the Armijo condition holds.
            var t = 1.0
            var nextLoss = 0.0
            var accepted = false
            for _ in 0..<40 {
                for j in 0..<size { candidate[j] = x[j] + t * direction[j] }
                nextLoss = objective(data, candidate, l2: l2, gradient: &candidateGradient)
                if nextLoss <= loss + 1e-4 * t * slope { accepted = true; break }
                t /= 2
            }
            guard accepted else { break }  // no progress is possible at this precision
            var s = [Double](repeating: 0, count: size)
            var y = [Double](repeating: 0, count: size)
            for j in 0..<size {
                s[j] = candidate[j] - x[j]
                y[j] = candidateGradient[j] - gradient[j]
            }
            let sy = dot(s, y)
            if sy > 1e-12 {
                if steps.count == memory { steps.removeFirst(); changes.removeFirst(); curvatures.removeFirst() }
                steps.append(s); changes.append(y); curvatures.append(1 / sy)
            }
            swap(&x, &candidate)
            swap(&gradient, &candidateGradient)
            loss = nextLoss
        }
        let b = x.removeLast()
        return (x, b, iteration)
    }

    private static func miniBatch(
        _ data: CompressedRows, columnCount m: Int, l1: Double, l2: Double, batchSize: Int, epochs: Int, seed: UInt64
    ) -> ([Double], Double) {
        let n = data.targets.count
        // Each batch estimates the weighted mean loss as (n / |B|) Σ_B r_i ℓ_i, whose
        // curvature is bounded by the largest single-row bound below.
        var rowBound = 0.0
        for i in 0..<n {
            var squared = 1.0
            for k in data.offsets[i]..<data.offsets[i + 1] { squared += data.values[k] * data.values[k] }
            rowBound = max(rowBound, 0.25 * Double(n) * data.rowScale[i] * squared)
        }
        let baseStep = 1 / (rowBound + l2)
        var generator = SeededGenerator(seed: seed)
        var order = Array(0..<n)
        var w = [Double](repeating: 0, count: m)
        var b = 0.0
        var gradient = [Double](repeating: 0, count: m)
        var touched: [Int32] = []
        for epoch in 0..<epochs {
            generator.shuffle(&order)
            let step = baseStep / Double(epoch + 1).squareRoot()
            var start = 0
            while start < n {
                let batch = order[start..<min(n, start + batchSize)]
                let scale = Double(n) / Double(batch.count)
                var gradientB = 0.0
                touched.removeAll(keepingCapacity: true)
                for i in batch {
                    var z = b
                    for k in data.offsets[i]..<data.offsets[i + 1] { z += w[Int(data.columns[k])] * data.values[k] }
                    let residual = scale * data.rowScale[i] * (sigmoid(z) - data.targets[i])
                    gradientB += residual
                    for k in data.offsets[i]..<data.offsets[i + 1] {
                        gradient[Int(data.columns[k])] += residual * data.values[k]
                        touched.append(data.columns[k])
                    }
                }
                // The penalty and its proximal step apply to every weight, not just the touched ones.
                let threshold = step * l1
                for j in 0..<m {
                    var v = w[j] - step * (gradient[j] + l2 * w[j])
                    if threshold > 0 { v = v > threshold ? v - threshold : (v < -threshold ? v + threshold : 0) }
                    w[j] = v
                }
                for j in touched { gradient[Int(j)] = 0 }
                b -= step * gradientB
                start += batchSize
            }
        }
        return (w, b)
    }

    /// The log-odds of the positive class.
    public func decisionFunction(_ x: SparseVector) -> Double {
        x.dot(weights) + intercept
    }

    /// The probability of the positive class.
    public func predictProbability(_ x: SparseVector) -> Double {
        sigmoid(decisionFunction(x))
    }

    /// Whether `x` is predicted positive at `threshold`.
    public func predict(_ x: SparseVector, threshold: Double = 0.5) -> Bool {
        predictProbability(x) >= threshold
    }

    private enum CodingKeys: String, CodingKey { case weights, intercept, configuration, iterations }

    /// Encodes weights sparsely, since most hashed positions are never seen and stay zero.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(SparseVector(dense: weights), forKey: .weights)
        try c.encode(intercept, forKey: .intercept)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(iterations, forKey: .iterations)
    }

    /// Decodes a model written by ``encode(to:)``.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weights = try c.decode(SparseVector.self, forKey: .weights).toDense()
        intercept = try c.decode(Double.self, forKey: .intercept)
        configuration = try c.decode(Configuration.self, forKey: .configuration)
        iterations = try c.decode(Int.self, forKey: .iterations)
    }
}

/// The logistic function, written to avoid overflow for large |z|.
@inline(__always)
func sigmoid(_ z: Double) -> Double {
    if z >= 0 { return 1 / (1 + exp(-z)) }
    let e = exp(z)
    return e / (1 + e)
}
