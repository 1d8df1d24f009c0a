import Foundation

/// The state a graph threads through its nodes.
///
/// Every field a node may write is declared in `schema` with its reducer; a field not in the
/// schema is read-only to nodes. Nodes return partial updates (`StateUpdate`), which the
/// runtime merges at the end of each step.
///
/// ```swift
/// struct ChatState: GraphState {
///     var messages: [ChatMessage] = []
///     var approved: Bool?
///     var toolCalls = 0
///     static let schema: StateSchema<ChatState> = [
///         .field("messages", \.messages, .mergeByID()),
///         .field("approved", \.approved),
///         .field("toolCalls", \.toolCalls, .sum),
///     ]
/// }
/// ```
public protocol GraphState: Codable, Sendable {
    init()
    static var schema: StateSchema<Self> { get }
}

/// How a field combines the value it holds with a value a node writes.
public struct Reducer<Value: Sendable>: Sendable {
    public let name: String
    /// `nil` means replace: the written value becomes the field's value, and two nodes
    /// writing the field in one step is an error.
    let combine: (@Sendable (Value, Value) throws -> Value)?

    public static var replace: Reducer { Reducer(name: "replace", combine: nil) }

    /// A reducer of your own: `combine(current, written)` returns the new value.
    public static func custom(
        _ name: String, _ combine: @escaping @Sendable (_ current: Value, _ written: Value) throws -> Value
    ) -> Reducer {
        Reducer(name: name, combine: combine)
    }
}

extension Reducer where Value: RangeReplaceableCollection {
    /// Appends the written elements.
    public static var append: Reducer { Reducer(name: "append") { $0 + $1 } }
}

extension Reducer where Value: AdditiveArithmetic {
    /// Adds the written value.
    public static var sum: Reducer { Reducer(name: "sum") { $0 + $1 } }
}

extension Reducer {
    /// For message lists: an element whose id is already present replaces it in place,
    /// new ids are appended in the order written.
    public static func mergeByID<Element: Identifiable & Sendable>() -> Reducer where Value == [Element] {
        Reducer(name: "mergeByID") { current, written in
            var result = current
            var position: [Element.ID: Int] = [:]
            position.reserveCapacity(current.count)
            for (index, element) in current.enumerated() { position[element.id] = index }
            for element in written {
                if let index = position[element.id] {
                    result[index] = element
                } else {
                    position[element.id] = result.count
                    result.append(element)
                }
            }
            return result
        }
    }

    /// For dictionaries: written keys overwrite, others stay.
    public static func merge<Key: Hashable & Sendable, Item: Sendable>() -> Reducer where Value == [Key: Item] {
        Reducer(name: "merge") { current, written in current.merging(written) { _, new in new } }
    }
}

/// One writable field of a state: its name (used in checkpoints and errors), key path and reducer.
public struct StateField<S: GraphState>: Sendable {
    public let name: String
    public let reducerName: String
    let isReplace: Bool
    let keyPath: KeyPathKey
    let reduce: @Sendable (inout S, any Sendable) throws -> Void
    let encodeValue: @Sendable (any Sendable, inout KeyedEncodingContainer<WriteCodingKey>) throws -> Void
    let decodeValue: @Sendable (KeyedDecodingContainer<WriteCodingKey>) throws -> any Sendable
    /// Appends the value's JSON text: directly for numbers, booleans and strings, through
    /// `JSONEncoder` otherwise (same text either way).
    let appendJSON: @Sendable (any Sendable, inout [UInt8]) throws -> Void

    public static func field<V: Codable & Sendable>(
        _ name: String, _ keyPath: WritableKeyPath<S, V>, _ reducer: Reducer<V> = .replace
    ) -> StateField {
        let path = KeyPathKey(keyPath)
        let typed = TypedKeyPath(path: keyPath)
        let combine = reducer.combine
        return StateField(
            name: name,
            reducerName: reducer.name,
            isReplace: combine == nil,
            keyPath: path,
            reduce: { state, value in
                guard let value = value as? V else { throw StateFieldTypeMismatch(field: name) }
                let keyPath = typed.path
                if let combine {
                    state[keyPath: keyPath] = try combine(state[keyPath: keyPath], value)
                } else {
                    state[keyPath: keyPath] = value
                }
            },
            encodeValue: { value, container in
                guard let value = value as? V else { throw StateFieldTypeMismatch(field: name) }
                try container.encode(value, forKey: .value)
            },
            decodeValue: { container in try container.decode(V.self, forKey: .value) },
            appendJSON: { value, buffer in
                switch value {
                case let number as Int: buffer.append(contentsOf: String(number).utf8)
                case let flag as Bool: buffer.append(contentsOf: (flag ? "true" : "false").utf8)
                case let text as String: JSONText.appendString(text, to: &buffer)
                case let value as V: buffer.append(contentsOf: try JSONCoding.encoder.encode(value))
                default: throw StateFieldTypeMismatch(field: name)
                }
            }
        )
    }
}

struct StateFieldTypeMismatch: Error, CustomStringConvertible {
    let field: String
    var description: String { "a value of the wrong type was written to field '\(field)'" }
}

/// Key paths are immutable values, safe to share; the standard library does not yet mark
/// `AnyKeyPath` as `Sendable`, so this wrapper says so.
struct KeyPathKey: Hashable, @unchecked Sendable {
    let path: AnyKeyPath
    init(_ path: AnyKeyPath) { self.path = path }
}

/// A typed key path, held by a field's reducer so it is not cast back on every write.
struct TypedKeyPath<Root, Value>: @unchecked Sendable {
    let path: WritableKeyPath<Root, Value>
}

/// The writable fields of a state type, in declaration order.
public struct StateSchema<S: GraphState>: Sendable, ExpressibleByArrayLiteral {
    public let fields: [StateField<S>]
    let indexByPath: [KeyPathKey: Int]
    let indexByName: [String: Int]

    public init(_ fields: [StateField<S>]) {
        self.fields = fields
        var byPath: [KeyPathKey: Int] = [:]
        var byName: [String: Int] = [:]
        for (index, field) in fields.enumerated() {
            byPath[field.keyPath] = index
            byName[field.name] = index
        }
        self.indexByPath = byPath
        self.indexByName = byName
    }

    public init(arrayLiteral elements: StateField<S>...) { self.init(elements) }

    /// Problems with the schema itself (duplicate names or key paths), reported by `compile()`.
    var problems: [String] {
        var problems: [String] = []
        var seen: Set<String> = []
        for field in fields where !seen.insert(field.name).inserted {
            problems.append("state field name '\(field.name)' is declared twice")
        }
        if indexByPath.count != fields.count {
            problems.append("a state key path is declared twice in the schema")
        }
        return problems
    }
}

/// One value written to one field. Not generic over the state, so the runtime's hot path
/// does not instantiate generic types per step.
struct FieldWrite: Sendable {
    /// Index into the schema's fields, or -1 when the key path is not in the schema.
    let field: Int
    let value: any Sendable
}

/// A partial update a node returns: the fields it writes, merged into the state by each
/// field's reducer at the end of the step.
///
/// ```swift
/// return .update(\.messages, [reply]).and(\.toolCalls, 1)
/// ```
public struct StateUpdate<S: GraphState>: Sendable {
    var writes: [FieldWrite] = []
    /// Routing chosen by the node itself (like LangGraph's `Command(goto:)`), followed in
    /// addition to the node's edges. Targets must be declared with `addNode(_:destinations:)`.
    public var goto: [Route] = []

    public init() {}

    public init(_ build: (inout StateUpdate) -> Void) {
        build(&self)
    }

    public static func update<V: Sendable>(_ keyPath: WritableKeyPath<S, V>, _ value: V) -> StateUpdate {
        var update = StateUpdate()
        update.set(keyPath, value)
        return update
    }

    /// An update that only routes.
    public static func goto(_ routes: Route...) -> StateUpdate {
        var update = StateUpdate()
        update.goto = routes
        return update
    }

    public mutating func set<V: Sendable>(_ keyPath: WritableKeyPath<S, V>, _ value: V) {
        writes.append(FieldWrite(field: S.schema.indexByPath[KeyPathKey(keyPath)] ?? -1, value: value))
    }

    public func and<V: Sendable>(_ keyPath: WritableKeyPath<S, V>, _ value: V) -> StateUpdate {
        var copy = self
        copy.set(keyPath, value)
        return copy
    }

    public var isEmpty: Bool { writes.isEmpty }

    /// Names of the fields written, in order.
    public var fieldNames: [String] {
        writes.map { $0.field >= 0 ? S.schema.fields[$0.field].name : "(undeclared)" }
    }

    /// The last value written to a field, if any.
    public func value<V>(_ keyPath: WritableKeyPath<S, V>) -> V? {
        guard let index = S.schema.indexByPath[KeyPathKey(keyPath)] else { return nil }
        return writes.last(where: { $0.field == index })?.value as? V
    }

    /// Applies the writes to a state, in order, through each field's reducer.
    public func applied(to state: S) throws -> S {
        var state = state
        let fields = S.schema.fields
        for write in writes {
            guard write.field >= 0 else { throw GraphError(.undeclaredField) }
            try fields[write.field].reduce(&state, write.value)
        }
        return state
    }
}
