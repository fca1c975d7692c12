// $lib/dayjs without its hundred locales.
import dayjs from 'dayjs';
export default dayjs;
