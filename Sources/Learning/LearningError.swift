/// Errors thrown when a caller passes input the library cannot work with.
public enum LearningError: Error, Equatable, Sendable {
    /// An argument is outside its allowed range; the message names it.
    case invalidArgument(String)
    /// A collection that must not be empty was empty.
    case emptyInput(String)
    /// Two collections that must be parallel have different lengths.
    case lengthMismatch(expected: Int, actual: Int)
    /// A vector does not have the dimension the model or transformer expects.
    case dimensionMismatch(expected: Int, actual: Int)
    /// Training labels contain a single class, so there is nothing to separate.
    case singleClass
}
