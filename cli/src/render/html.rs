use crate::model::Report;
pub fn page(_r: &Report, _j: &[String]) -> String {
    String::new()
}
