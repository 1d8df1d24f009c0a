/// What can go wrong managing assistants and their runs, in the feature's own words.
enum AssistantError: Error, Equatable, Sendable {
    /// Managing assistants is for site administrators.
    case notAnAdministrator
    case assistantNotFound
    /// A run the caller may not see is "not found", like one that does not exist.
    case runNotFound
    /// Only the member who asked, or the conversation's owner or admins, may answer or cancel.
    case mayNotDecide
    /// The run is not waiting for what the request answers (already decided, finished…).
    case conflict(String)
}
