/// What can go wrong in the model registry, in its own words (`ProblemMiddleware` maps it).
enum ModelRegistryError: Error, Equatable, Sendable {
    case unknownModel(String)
    case versionNotFound
    /// The artifact fails its checksum or does not decode: it is never served.
    case damagedArtifact(String)
    /// Rolling back needs a production version that replaced another.
    case nothingToRollBack(String)
    case notAnAdministrator
    case tooFewExamples(String)
    /// A report chart that does not exist (the charts there are, listed).
    case chartNotFound(String)
    /// No drift to draw: production has scored nothing on this node.
    case noDrift(String)
}
