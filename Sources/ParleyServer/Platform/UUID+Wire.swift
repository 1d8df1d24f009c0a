import Vapor

/// Lower-case UUID strings on the wire.
extension UUID {
    var wire: String { uuidString.lowercased() }
}
